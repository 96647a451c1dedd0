PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_audit_events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`tool` text,
	`request_id` text,
	`status` text,
	`duration_ms` integer,
	`details` text DEFAULT '{}' NOT NULL,
	`http_request_id` text,
	`instance_id` text NOT NULL,
	`chain` text,
	`chain_seq` integer,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_audit_events`("seq", "at", "actor", "action", "tool", "request_id", "status", "duration_ms", "details", "http_request_id", "instance_id", "chain", "chain_seq", "prev_hash", "hash") SELECT "seq", "at", "actor", "action", "tool", "request_id", "status", "duration_ms", "details", "http_request_id", "instance_id", "chain", "chain_seq", "prev_hash", "hash" FROM `audit_events`;--> statement-breakpoint
DROP TABLE `audit_events`;--> statement-breakpoint
ALTER TABLE `__new_audit_events` RENAME TO `audit_events`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE UNIQUE INDEX `audit_events_chain_position_idx` ON `audit_events` (`chain`,`chain_seq`);--> statement-breakpoint
CREATE INDEX `audit_events_chain_seq_idx` ON `audit_events` (`chain`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_actor_idx` ON `audit_events` (`actor`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tool_idx` ON `audit_events` (`tool`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_action_idx` ON `audit_events` (`action`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_at_idx` ON `audit_events` (`at`);--> statement-breakpoint
CREATE INDEX `audit_events_request_idx` ON `audit_events` (`request_id`);