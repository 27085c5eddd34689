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

// run executes main and exits 1 when any check failed.
function run(main) {
  main()
    .catch((e) => report("main", false, e && e.stack))
    .finally(() => process.exit(failed ? 1 : 0));
}

module.exports = {
  base, client, examples, inputs: process.env.MH_INPUTS, out: process.env.MH_OUT,
  resourceName, report, bodyFor, projectsOf, sleep, waitDone, run,
};
