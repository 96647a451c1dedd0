CREATE TABLE `approval_grants` (
	`id` text PRIMARY KEY NOT NULL,
	`request_id` text NOT NULL,
	`tool` text NOT NULL,
	`requester_id` text NOT NULL,
	`sensitivity` text NOT NULL,
	`scope` text NOT NULL,
	`arguments` text NOT NULL,
	`matchers` text DEFAULT '{}' NOT NULL,
	`approvers` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`uses_left` integer,
	`max_uses` integer,
	`uses` integer DEFAULT 0 NOT NULL,
	`revoked_at` integer,
	`revoked_by` text,
	`revoke_reason` text
);
--> statement-breakpoint
CREATE INDEX `approval_grants_lookup_idx` ON `approval_grants` (`tool`,`requester_id`,`expires_at`);--> statement-breakpoint
CREATE INDEX `approval_grants_requester_idx` ON `approval_grants` (`requester_id`);--> statement-breakpoint
ALTER TABLE `approval_decisions` ADD `grant` text;--> statement-breakpoint
ALTER TABLE `approval_requests` ADD `call_hash` text;--> statement-breakpoint
ALTER TABLE `approval_requests` ADD `policy_version` text;--> statement-breakpoint
ALTER TABLE `approval_requests` ADD `grant_id` text;