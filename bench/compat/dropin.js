// The drop-in check: the official magic-hour Node client (npm
// magic-hour@0.43.1), pointed at an hourglass gateway (`hourglass serve`)
// with a tenant key instead of a Magic Hour key, creates jobs of every
// tool, polls them to complete through the gateway's Magic Hour routes,
// and downloads the outputs from the gateway's own URLs (stored copies
// that do not expire). generate() uploads local files through the
// gateway's upload URLs. Every response passes the client's zod schemas.
//
// Input and output: see lib.js (MH_BASE_URL is the gateway, MH_KEY a
// tenant key).
"use strict";
const { base, client, examples, resourceName, report, bodyFor, waitDone, run, checkFaceDetection, checkDeletes, checkGenerate } = require("./lib");

async function fetchAll(downloads) {
  let bytes = 0;
  for (const d of downloads) {
    if (!d.url.startsWith(base + "/v1/downloads/")) throw new Error(`download URL is not the gateway's: ${d.url}`);
    if (new Date(d.expiresAt).getTime() - Date.now() < 5 * 365 * 24 * 3600 * 1000) throw new Error(`expires ${d.expiresAt}`);
    const res = await fetch(d.url);
    if (!res.ok) throw new Error(`GET ${d.url}: ${res.status}`);
    bytes += Buffer.from(await res.arrayBuffer()).length;
  }
  return bytes;
}

async function main() {
  const v1 = client.v1;
  for (const [tool, ex] of Object.entries(examples.tools)) {
    const res = v1[resourceName(tool)];
    if (!res || typeof res.create !== "function") {
      report(`create ${tool}`, true, "skipped: not in magic-hour@0.43.1");
      continue;
    }
    try {
      const created = await res.create(bodyFor(tool));
      if (!created.id || !created.id.startsWith("job_")) throw new Error(`id ${created.id} is not a gateway job id`);
      const p = await waitDone(ex.kind, created.id);
      if (p.id !== created.id) throw new Error("get returned another id");
      if (p.status !== "complete" || !p.downloads.length) throw new Error(`ended ${p.status} with ${p.downloads.length} downloads`);
      const bytes = await fetchAll(p.downloads);
      report(`create+get+download ${tool}`, bytes > 0, `${created.id} ${p.status} ${p.downloads.length} file(s) ${bytes} bytes`);
    } catch (e) {
      report(`create+get+download ${tool}`, false, e && e.message);
    }
  }
  await checkFaceDetection();
  await checkDeletes(true);
  // generate(): local files are uploaded through the gateway's upload
  // URLs, the job runs, and the outputs download from the gateway.
  await checkGenerate();
}

run(main);
