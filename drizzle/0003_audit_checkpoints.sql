CREATE TABLE `audit_checkpoints` (
	`seq` integer PRIMARY KEY NOT NULL,
	`hash` text NOT NULL,
	`at` integer NOT NULL,
	`instance_id` text NOT NULL,
	`key_id` text NOT NULL,
	`signature` text NOT NULL
);
