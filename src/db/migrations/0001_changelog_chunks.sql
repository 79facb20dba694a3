CREATE TABLE "sync_run_changes" (
	"run_id" bigint NOT NULL,
	"chunk" integer NOT NULL,
	"changes" jsonb NOT NULL,
	CONSTRAINT "sync_run_changes_run_id_chunk_pk" PRIMARY KEY("run_id","chunk")
);
--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "change_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_run_changes" ADD CONSTRAINT "sync_run_changes_run_id_sync_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."sync_runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
-- Changelogs stored before this migration become one chunk each; 0002 drops the old column.
INSERT INTO "sync_run_changes" ("run_id", "chunk", "changes")
SELECT "id", 0, "changelog" FROM "sync_runs" WHERE jsonb_array_length("changelog") > 0;--> statement-breakpoint
UPDATE "sync_runs" SET "change_count" = jsonb_array_length("changelog");
