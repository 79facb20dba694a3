CREATE TABLE "sync_state_objects" (
	"realm" text NOT NULL,
	"kind" text NOT NULL,
	"key" text NOT NULL,
	"fingerprint" text NOT NULL,
	"state" jsonb NOT NULL,
	CONSTRAINT "sync_state_objects_realm_kind_key_pk" PRIMARY KEY("realm","kind","key")
);
--> statement-breakpoint
CREATE TABLE "sync_states" (
	"realm" text PRIMARY KEY NOT NULL,
	"realm_id" text NOT NULL,
	"events_cursor" jsonb,
	"reconciled_at" timestamp with time zone NOT NULL,
	"trusted" boolean DEFAULT false NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
