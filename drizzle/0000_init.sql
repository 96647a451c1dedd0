CREATE TABLE `api_tokens` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`user_id` text NOT NULL,
	`token_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash_idx` ON `api_tokens` (`token_hash`);--> statement-breakpoint
CREATE INDEX `api_tokens_user_idx` ON `api_tokens` (`user_id`);--> statement-breakpoint
CREATE TABLE `approval_decisions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`request_id` text NOT NULL,
	`approver_id` text NOT NULL,
	`verdict` text NOT NULL,
	`reason` text NOT NULL,
	`decided_at` integer NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `approval_requests`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `approval_decisions_request_approver_idx` ON `approval_decisions` (`request_id`,`approver_id`);--> statement-breakpoint
CREATE TABLE `approval_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`short_id` text NOT NULL,
	`tool` text NOT NULL,
	`arguments` text NOT NULL,
	`requester_id` text NOT NULL,
	`requester_role` text NOT NULL,
	`sensitivity` text NOT NULL,
	`mode` text NOT NULL,
	`status` text NOT NULL,
	`status_reason` text,
	`required_approvals` integer NOT NULL,
	`instance_id` text,
	`requested_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`decided_at` integer,
	`execution_status` text DEFAULT 'none' NOT NULL,
	`execution_instance_id` text,
	`execution_started_at` integer,
	`execution_finished_at` integer,
	`execution_error` text,
	`result` text
);
--> statement-breakpoint
CREATE INDEX `approval_requests_status_requested_idx` ON `approval_requests` (`status`,`requested_at`);--> statement-breakpoint
CREATE INDEX `approval_requests_status_expires_idx` ON `approval_requests` (`status`,`expires_at`);--> statement-breakpoint
CREATE INDEX `approval_requests_short_id_idx` ON `approval_requests` (`short_id`);--> statement-breakpoint
CREATE INDEX `approval_requests_execution_idx` ON `approval_requests` (`execution_status`,`status`);--> statement-breakpoint
CREATE INDEX `approval_requests_instance_idx` ON `approval_requests` (`instance_id`,`status`);--> statement-breakpoint
CREATE INDEX `approval_requests_requested_at_idx` ON `approval_requests` (`requested_at`);--> statement-breakpoint
CREATE TABLE `audit_events` (
	`seq` integer PRIMARY KEY NOT NULL,
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
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_events_actor_idx` ON `audit_events` (`actor`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_tool_idx` ON `audit_events` (`tool`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_action_idx` ON `audit_events` (`action`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_at_idx` ON `audit_events` (`at`);--> statement-breakpoint
CREATE INDEX `audit_events_request_idx` ON `audit_events` (`request_id`);--> statement-breakpoint
CREATE TABLE `instances` (
	`id` text PRIMARY KEY NOT NULL,
	`hostname` text NOT NULL,
	`pid` integer NOT NULL,
	`started_at` integer NOT NULL,
	`heartbeat_at` integer NOT NULL,
	`stopped_at` integer
);
--> statement-breakpoint
CREATE TABLE `meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `role_permissions` (
	`role` text NOT NULL,
	`permission` text NOT NULL,
	PRIMARY KEY(`role`, `permission`),
	FOREIGN KEY (`role`) REFERENCES `roles`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `roles` (
	`name` text PRIMARY KEY NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tool_policies` (
	`tool` text PRIMARY KEY NOT NULL,
	`sensitivity` text NOT NULL,
	`description` text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`role` text NOT NULL,
	`active` integer DEFAULT true NOT NULL,
	`created_at` integer NOT NULL,
	`disabled_at` integer,
	FOREIGN KEY (`role`) REFERENCES `roles`(`name`) ON UPDATE no action ON DELETE no action
);
