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
const fs = require("fs");
const path = require("path");
const { base, client, examples, inputs, out, resourceName, report, bodyFor, projectsOf, sleep, waitDone, run } = require("./lib");

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
  try {
    const fd = await v1.faceDetection.create({ assets: { targetFilePath: "https://example.com/people.png" }, confidenceScore: 0.5 });
    let det = await v1.faceDetection.get({ id: fd.id });
    for (let i = 0; i < 400 && det.status !== "complete" && det.status !== "error"; i++) {
      await sleep(25);
      det = await v1.faceDetection.get({ id: fd.id });
    }
    report("faceDetection.create+get", det.status === "complete" && Array.isArray(det.faces), `${det.status} faces=${det.faces.length}`);
  } catch (e) {
    report("faceDetection.create+get", false, e && e.message);
  }
  for (const [kind, res] of Object.entries(projectsOf)) {
    try {
      const tool = Object.keys(examples.tools).find((t) => examples.tools[t].kind === kind && v1[resourceName(t)]);
      const created = await v1[resourceName(tool)].create(bodyFor(tool));
      await waitDone(kind, created.id);
      await v1[res].delete({ id: created.id });
      let gone = false;
      try {
        await v1[res].get({ id: created.id });
      } catch (e) {
        gone = e && (e.statusCode === 404 || String(e.message).includes("404") || String(e).includes("Not Found"));
      }
      report(`${res}.delete`, gone, gone ? "404 after delete" : "still readable after delete");
    } catch (e) {
      report(`${res}.delete`, false, e && e.message);
    }
  }
  // generate(): local files are uploaded through the gateway's upload
  // URLs, the job runs, and the outputs download from the gateway.
  const flows = [
    ["faceSwapPhoto", { assets: { sourceFilePath: path.join(inputs, "input.png"), targetFilePath: path.join(inputs, "input.png") } }],
    ["imageToVideo", { endSeconds: 5, assets: { imageFilePath: path.join(inputs, "input.png") }, style: { prompt: "waves" } }],
  ];
  for (const [res, req] of flows) {
    try {
      const dir = path.join(out, res);
      fs.mkdirSync(dir, { recursive: true });
      const r = await v1[res].generate(req, { waitForCompletion: true, downloadOutputs: true, downloadDirectory: dir });
      const files = r.downloadedPaths || [];
      const sizes = files.map((f) => fs.statSync(f).size);
      report(`generate ${res}`, r.status === "complete" && files.length > 0 && sizes.every((s) => s > 0),
        `${r.status} ${files.map((f) => path.basename(f)).join(",")} ${sizes.join(",")}`);
    } catch (e) {
      report(`generate ${res}`, false, e && e.message);
    }
  }
}

run(main);
