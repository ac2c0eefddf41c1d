import { sql, type Kysely } from 'kysely'

import type { Dialect } from '../dialect.ts'

/**
 * PostgreSQL only: a job that becomes claimable (inserted, retried, released or put back by
 * the reaper: any write leaving it `waiting`) sends NOTIFY on `proctor_jobs` with its queue
 * as the payload. PostgreSQL delivers a NOTIFY when its transaction commits, and only then:
 * a listener never hears of a job it cannot see yet. Identical notifications in one
 * transaction are folded into one. Each worker process listens (src/queue/notify.ts) and
 * wakes its idle slots; polling stays as the fallback for a lost connection.
 *
 * SQLite needs nothing: one process owns the file and wakes its own slots in memory.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return

  await sql`
    create or replace function proctor_notify_job() returns trigger language plpgsql as $$
    begin
      perform pg_notify('proctor_jobs', new.queue);
      return null;
    end
    $$`.execute(db)
  await sql`
    create trigger jobs_notify after insert or update of state on jobs
    for each row when (new.state = 'waiting')
    execute function proctor_notify_job()`.execute(db)
}
