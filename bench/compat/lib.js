// Shared by compat.js (against the emulator) and dropin.js (through the
// gateway): the official client built from the environment, the spec's
// example bodies adapted to magic-hour@0.43.1, and the check reporter.
//
// Input (environment): MH_BASE_URL, MH_KEY, MH_EXAMPLES (JSON file: tool
// name → {kind, body} with snake_case bodies), MH_INPUTS (folder with
// input.png), MH_OUT (download folder).
// Output: one JSON line per check on stdout: {"check", "ok", "detail"}.
"use strict";
const fs = require("fs");
const path = require("path");
const Client = require("magic-hour").default;

const base = process.env.MH_BASE_URL;
const client = new Client({ token: process.env.MH_KEY, baseUrl: base });
const examples = JSON.parse(fs.readFileSync(process.env.MH_EXAMPLES, "utf8"));

const camel = (s) => s.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
function toCamel(v) {
  if (Array.isArray(v)) return v.map(toCamel);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [camel(k), toCamel(x)]));
  }
  return v;
}
const resourceName = (tool) => camel(tool.replace(/-/g, "_"));

let failed = 0;
function report(check, ok, detail) {
  if (!ok) failed++;
  process.stdout.write(JSON.stringify({ check, ok, detail: detail === undefined ? "" : String(detail) }) + "\n");
}

// magic-hour@0.43.1 predates some of the current spec: it requires the
// deprecated `orientation` and `style.enhancement`, and knows older enum
// values only. These are the values a user of that version writes; the
// server must accept them (CONTRACT.md, "Backward compatibility").
const legacy = {
  "ai-image-generator": (b) => ({ ...b, orientation: "landscape" }),
  "text-to-video": (b) => ({ ...b, orientation: "landscape" }),
  "ai-image-upscaler": (b) => ({ ...b, style: { ...(b.style || {}), enhancement: "Balanced" } }),
  "ai-talking-photo": (b) => ({ ...b, style: { ...(b.style || {}), generationMode: "pro" } }),
  "ai-clothes-changer": (b) => ({ ...b, assets: { ...b.assets, garmentType: "upper_body" } }),
};
const bodyFor = (tool) => (legacy[tool] || ((b) => b))(toCamel(examples.tools[tool].body));

const projectsOf = { video: "videoProjects", image: "imageProjects", audio: "audioProjects" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const terminal = (status) => ["complete", "error", "canceled"].includes(status);

// waitDone polls a project until it is terminal.
async function waitDone(kind, id, pause = 10) {
  let p = await client.v1[projectsOf[kind]].get({ id });
  for (let i = 0; i < 3000 && !terminal(p.status); i++) {
    await sleep(pause);
    p = await client.v1[projectsOf[kind]].get({ id });
  }
  return p;
}

// checkFaceDetection detects faces in an image URL and polls the result.
async function checkFaceDetection() {
  const v1 = client.v1;
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
}

// checkDeletes creates one project of each kind, deletes it (after it
// finished when finishFirst) and expects a 404 after.
async function checkDeletes(finishFirst) {
  const v1 = client.v1;
  for (const [kind, res] of Object.entries(projectsOf)) {
    try {
      const tool = Object.keys(examples.tools).find((t) => examples.tools[t].kind === kind && v1[resourceName(t)]);
      const created = await v1[resourceName(tool)].create(bodyFor(tool));
      if (finishFirst) await waitDone(kind, created.id);
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
}

// checkGenerate runs the client's generate(): upload a local file, create,
// poll, download.
async function checkGenerate() {
  const v1 = client.v1;
  const input = path.join(module.exports.inputs, "input.png");
  const flows = [
    ["faceSwapPhoto", { assets: { sourceFilePath: input, targetFilePath: input } }],
    ["imageToVideo", { endSeconds: 5, assets: { imageFilePath: input }, style: { prompt: "waves" } }],
  ];
  for (const [res, req] of flows) {
    try {
      const dir = path.join(module.exports.out, res);
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

// run executes main and exits 1 when any check failed.
function run(main) {
  main()
    .catch((e) => report("main", false, e && e.stack))
    .finally(() => process.exit(failed ? 1 : 0));
}

module.exports = {
  base, client, examples, inputs: process.env.MH_INPUTS, out: process.env.MH_OUT,
  resourceName, report, bodyFor, projectsOf, sleep, waitDone, run,
  checkFaceDetection, checkDeletes, checkGenerate,
};
