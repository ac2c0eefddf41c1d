/** The two databases proctor runs on. Migrations take it so one source serves both. */
export type Dialect = 'sqlite' | 'postgres'
