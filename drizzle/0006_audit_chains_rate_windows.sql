CREATE TABLE `rate_windows` (
	`key` text NOT NULL,
	`window_start` integer NOT NULL,
	`count` integer NOT NULL,
	PRIMARY KEY(`key`, `window_start`)
);
--> statement-breakpoint
ALTER TABLE `audit_checkpoints` ADD `heads` text;--> statement-breakpoint
ALTER TABLE `audit_events` ADD `chain` text;--> statement-breakpoint
ALTER TABLE `audit_events` ADD `chain_seq` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `audit_events_chain_position_idx` ON `audit_events` (`chain`,`chain_seq`);--> statement-breakpoint
CREATE INDEX `audit_events_chain_seq_idx` ON `audit_events` (`chain`,`seq`);