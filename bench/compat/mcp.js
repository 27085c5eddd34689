// The official TypeScript MCP client (npm @modelcontextprotocol/sdk)
// driving `hourglass mcp`, over stdio (it starts the binary) or streamable
// HTTP (a running server). Run by mcp_test.go.
//
// Input (environment): HG_MODE (stdio|http); stdio: HG_BIN, HG_ARGS (JSON
// array); http: HG_MCP_URL, HG_MCP_KEY. MH_EMU_URL (the emulator, for its
// stats), HG_CONTROL (the test's clock control: POST /freeze, /resume),
// HG_INPUT (a local PNG).
// Output: one JSON line per check on stdout: {"check", "ok", "detail"}.
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

let failed = 0;
function report(check, ok, detail) {
  if (!ok) failed++;
  console.log(JSON.stringify({ check, ok: !!ok, detail: String(detail) }));
}

const sha256 = (buf) => crypto.createHash("sha256").update(buf).digest("hex");
const text = (res) => (res.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");

async function stats() {
  const r = await fetch(process.env.MH_EMU_URL + "/_emulator/stats");
  return r.json();
}

async function control(what) {
  const r = await fetch(process.env.HG_CONTROL + "/" + what, { method: "POST" });
  if (!r.ok) throw new Error("control " + what + ": " + r.status);
}

async function main() {
  const mode = process.env.HG_MODE;
  const transport =
    mode === "stdio"
      ? new StdioClientTransport({ command: process.env.HG_BIN, args: JSON.parse(process.env.HG_ARGS), env: { ...process.env }, stderr: "inherit" })
      : new StreamableHTTPClientTransport(new URL(process.env.HG_MCP_URL), {
          requestInit: { headers: { Authorization: "Bearer " + process.env.HG_MCP_KEY } },
        });
  const client = new Client({ name: "hourglass-compat", version: "1.0.0" });
  await client.connect(transport);
  report(mode + ": connect", true, "instructions: " + (client.getInstructions() || "").slice(0, 60));

  let progress = 0;
  const call = (name, args) =>
    client.callTool({ name, arguments: args }, undefined, {
      timeout: 180000,
      resetTimeoutOnProgress: true,
      onprogress: () => progress++,
    });

  // List tools (every page).
  const tools = {};
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    for (const t of page.tools) tools[t.name] = t;
    cursor = page.nextCursor;
  } while (cursor);
  const want = ["ai_image_generator", "text_to_video", "ai_image_upscaler", "get_job", "wait_for_job", "list_jobs", "cancel_job", "delete_job", "upload_file", "detect_faces", "account", "estimate"];
  const missing = want.filter((n) => !tools[n]);
  const genProps = (tools.ai_image_generator && tools.ai_image_generator.inputSchema.properties) || {};
  report(mode + ": list tools", missing.length === 0 && genProps.idempotency_key && genProps.wait_seconds && genProps.style,
    Object.keys(tools).length + " tools; missing: " + missing.join(","));

  const before = (await stats()).creates;

  // Invalid arguments: a tool error naming the field, nothing created.
  let res = await call("ai_image_generator", { image_count: 1, aspect_ratio: "1:1", style: {} });
  report(mode + ": invalid arguments", res.isError && text(res).includes("style.prompt") && (await stats()).creates === before, text(res).split("\n")[0]);

  // An image tool with wait_seconds.
  const genArgs = { image_count: 1, aspect_ratio: "1:1", style: { prompt: "a red kite over the sea" } };
  res = await call("ai_image_generator", { ...genArgs, wait_seconds: 120 });
  const img = res.structuredContent || {};
  report(mode + ": image with wait_seconds", !res.isError && img.status === "stored" && (img.outputs || []).length > 0, img.job_id + " " + img.status);
  await checkOutputs(client, mode + ": image outputs", img);

  // The same create again: the same job, one upstream create.
  res = await call("ai_image_generator", genArgs);
  const again = res.structuredContent || {};
  const s1 = await stats();
  report(mode + ": repeated create returns the same job", again.job_id === img.job_id && again.reused === true && s1.creates === before + 1,
    `${again.job_id} vs ${img.job_id}; emulator creates ${s1.creates - before}`);

  // Upload a local file and use it.
  const png = fs.readFileSync(process.env.HG_INPUT);
  res = await call("upload_file", { path: process.env.HG_INPUT });
  if (res.isError) {
    res = await call("upload_file", { content_base64: png.toString("base64"), filename: "input.png" });
  }
  const up = res.structuredContent || {};
  report(mode + ": upload a local file", !res.isError && up.sha256 === sha256(png) && String(up.file_path || "") !== "", up.file_path);
  res = await call("ai_image_upscaler", { assets: { image_file_path: up.file_path }, scale_factor: 2, style: { mode: "balanced" }, wait_seconds: 120 });
  const ups = res.structuredContent || {};
  report(mode + ": use the upload", !res.isError && ups.status === "stored", ups.job_id + " " + ups.status);
  await checkOutputs(client, mode + ": upscaler outputs", ups);

  // A video without waiting, then wait_for_job twice: the emulator's clock
  // is frozen for the first (it cannot finish), running for the second.
  await control("freeze");
  res = await call("text_to_video", { end_seconds: 5, style: { prompt: "rain on a window" } });
  const vid = res.structuredContent || {};
  report(mode + ": video without waiting", !res.isError && vid.job_id && vid.done === false && vid.expected_seconds > 0, vid.job_id + " " + vid.status);
  res = await call("wait_for_job", { job_id: vid.job_id, wait_seconds: 1 });
  const w1 = res.structuredContent || {};
  report(mode + ": first wait_for_job times out", !res.isError && w1.timed_out === true && w1.done === false && text(res).includes("wait_for_job"), text(res).split("\n")[0]);
  await control("resume");
  res = await call("wait_for_job", { job_id: vid.job_id, wait_seconds: 120 });
  const w2 = res.structuredContent || {};
  report(mode + ": second wait_for_job completes", !res.isError && w2.status === "stored" && !w2.timed_out, w2.status);
  await checkOutputs(client, mode + ": video outputs", w2);
  const s2 = await stats();
  report(mode + ": emulator stats", s2.creates === before + 3 && (s2.creates_by_tool["ai-image-generator"] || 0) === 1,
    `creates ${s2.creates - before}, ai-image-generator ${s2.creates_by_tool["ai-image-generator"]}`);
  report(mode + ": progress notifications", progress > 0, progress + " notifications");

  const rl = await client.listResources();
  report(mode + ": resources list recent jobs", rl.resources.length === 3, rl.resources.map((r) => r.uri).join(" "));
  await client.close();
}

// checkOutputs reads every stored output of a job result through
// resources/read and compares its size and sha256 with the result's.
async function checkOutputs(client, check, job) {
  const outs = job.outputs || [];
  if (outs.length === 0) return report(check, false, "no outputs");
  for (const o of outs) {
    const rr = await client.readResource({ uri: o.resource_uri });
    const data = Buffer.from(rr.contents[0].blob || "", "base64");
    if (data.length !== o.size || sha256(data) !== o.sha256) {
      return report(check, false, `${o.resource_uri}: ${data.length} bytes ${sha256(data)}, result says ${o.size} ${o.sha256}`);
    }
  }
  report(check, true, outs.length + " outputs, sha256 verified");
}

main().then(
  () => process.exit(failed ? 1 : 0),
  (err) => {
    report("run", false, err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
