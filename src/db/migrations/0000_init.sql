CREATE TABLE "app_secrets" (
	"name" text PRIMARY KEY NOT NULL,
	"ciphertext" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sync_runs" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "sync_runs_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"realm" text NOT NULL,
	"trigger" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"dry_run" boolean DEFAULT false NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"counts" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"conflicts" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"errors" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"changelog" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"message" text,
	CONSTRAINT "sync_runs_status_check" CHECK (status in ('running', 'succeeded', 'failed', 'guard_tripped'))
);
--> statement-breakpoint
CREATE TABLE "token_issuances" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "token_issuances_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"consumer" text NOT NULL,
	"user_id" text NOT NULL,
	"client_id" text NOT NULL,
	"outcome" text NOT NULL,
	"issued_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_passwords" (
	"realm" text NOT NULL,
	"user_id" text NOT NULL,
	"ciphertext" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_passwords_realm_user_id_pk" PRIMARY KEY("realm","user_id")
);
--> statement-breakpoint
CREATE INDEX "sync_runs_realm_id_idx" ON "sync_runs" USING btree ("realm","id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "token_issuances_issued_at_idx" ON "token_issuances" USING btree ("issued_at");