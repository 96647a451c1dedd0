CREATE TABLE `notify_deliveries` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`id` text NOT NULL,
	`event_id` text NOT NULL,
	`event_type` text NOT NULL,
	`receiver` text NOT NULL,
	`request_id` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`created_at` integer NOT NULL,
	`last_attempt_at` integer,
	`last_status` integer,
	`last_error` text,
	`delivered_at` integer,
	`response` text,
	`claimed_by` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `notify_deliveries_id_idx` ON `notify_deliveries` (`id`);--> statement-breakpoint
CREATE INDEX `notify_deliveries_due_idx` ON `notify_deliveries` (`receiver`,`status`,`next_attempt_at`);--> statement-breakpoint
CREATE INDEX `notify_deliveries_request_idx` ON `notify_deliveries` (`request_id`,`receiver`);--> statement-breakpoint
CREATE INDEX `notify_deliveries_created_idx` ON `notify_deliveries` (`created_at`);--> statement-breakpoint
CREATE TABLE `notify_escalations` (
	`request_id` text PRIMARY KEY NOT NULL,
	`escalated_at` integer NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `approval_requests`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `slack_links` (
	`slack_user_id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `slack_links_user_idx` ON `slack_links` (`user_id`);