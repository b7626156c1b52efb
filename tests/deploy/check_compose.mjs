// check_compose.mjs - parses deploy/compose.yaml (YAML 1.2, merge keys as Compose resolves
// them) and checks the sidecar wiring: the four services, the processor and the collector
// sharing one tmpfs-backed volume at /dev/shm and one ring, the collector pointed at the
// statsd service, both running as the image's uid with a read-only root and no capabilities,
// and the prometheus service scraping the collector's /metrics at the port of its --prometheus
// (through the configuration file it mounts, deploy/prometheus.yml).
//   node check_compose.mjs --uid UID FILE
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseDocument } from "yaml";

function fail(what) {
  console.error(`check_compose: ${what}`);
  process.exit(1);
}
function check(cond, what) {
  if (!cond) fail(what);
}

const [flag, uidText, file] = process.argv.slice(2);
check(flag === "--uid" && file, "usage: check_compose.mjs --uid UID FILE");
const doc = parseDocument(readFileSync(file, "utf8"), { merge: true });
check(doc.errors.length === 0, `YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
const c = doc.toJS({ maxAliasCount: 100 });
const svc = c.services ?? {};
for (const s of ["processor", "collector", "statsd", "prometheus"])
  check(svc[s] !== undefined, `no service "${s}"`);

const shmVolume = (name) => {
  const vols = (svc[name].volumes ?? []).filter((v) => v.target === "/dev/shm");
  check(vols.length === 1, `${name}: not exactly one volume at /dev/shm`);
  check(vols[0].type === "volume" && !vols[0].read_only, `${name}: /dev/shm is not a writable volume`);
  return vols[0].source;
};
const shared = shmVolume("collector");
check(shmVolume("processor") === shared, "processor and collector mount different volumes at /dev/shm");
const opts = c.volumes?.[shared]?.driver_opts ?? {};
check(opts.type === "tmpfs" && /(^|,)size=/.test(opts.o ?? ""),
  `volume ${shared} is not a tmpfs with a size`);

const envOf = (name) => svc[name].environment ?? {};
check(!Array.isArray(envOf("collector")) && !Array.isArray(envOf("processor")),
  "write environment as a mapping");
const ring = envOf("collector").GBATCH_RING;
check(ring !== undefined && envOf("processor").GBATCH_RING === ring,
  "collector and processor do not name the same GBATCH_RING");
const tel = svc.processor.command ?? [];
const t = tel.indexOf("--telemetry");
check(t >= 0 && tel[t + 1] === `shm:${ring}`, `the processor does not write to ring "${ring}"`);
check(svc.processor.command?.[0] === "processor" && svc.collector.command?.[0] === "collector",
  "the entry point's first argument does not pick the program");

const url = envOf("collector").DD_DOGSTATSD_URL ?? "";
check(/^udp:\/\/statsd:[0-9]+$/.test(url), `DD_DOGSTATSD_URL "${url}" is not udp://statsd:PORT`);
check((svc.collector.depends_on ?? []).includes("statsd"), "the collector does not wait for statsd");
check((svc.processor.depends_on ?? []).includes("collector"),
  "the processor does not start after the collector");

// Prometheus: the collector listens on every address of its container at PORT, and the
// prometheus service's configuration scrapes collector:PORT at /metrics.
const cargs = svc.collector.command ?? [];
const pi = cargs.indexOf("--prometheus");
check(pi >= 0, "the collector has no --prometheus");
const pm = /^(|0\.0\.0\.0|\[::\]):([0-9]+)$/.exec(cargs[pi + 1] ?? "");
check(pm !== null, `--prometheus "${cargs[pi + 1]}" is not :PORT (other containers must reach it)`);
const mport = pm[2];
const pargs = svc.prometheus.command ?? [];
const cfgArg = pargs.find((a) => a.startsWith("--config.file="));
check(cfgArg !== undefined, "the prometheus service names no --config.file");
const cfgPath = cfgArg.slice("--config.file=".length);
const mount = (svc.prometheus.volumes ?? []).find((v) => v.target === cfgPath);
check(mount?.type === "bind" && mount.read_only === true,
  `prometheus: ${cfgPath} is not a read-only bind mount`);
const promCfg = parseDocument(readFileSync(resolve(dirname(file), mount.source), "utf8"));
check(promCfg.errors.length === 0, `${mount.source}: ${promCfg.errors.map((e) => e.message)}`);
const jobs = promCfg.toJS().scrape_configs ?? [];
const job = jobs.find((j) => (j.static_configs ?? []).some((sc) =>
  (sc.targets ?? []).includes(`collector:${mport}`)));
check(job !== undefined, `${mount.source}: no job scrapes collector:${mport} (the --prometheus port)`);
check((job.metrics_path ?? "/metrics") === "/metrics", `${mount.source}: metrics_path is not /metrics`);
check((svc.prometheus.depends_on ?? []).includes("collector"),
  "the prometheus service does not start after the collector");

for (const name of ["processor", "collector"]) {
  const s = svc[name];
  check(s.user === `${uidText}:${uidText}`, `${name}: user is not ${uidText}:${uidText}`);
  check(s.read_only === true, `${name}: root filesystem is not read-only`);
  check((s.cap_drop ?? []).includes("ALL"), `${name}: capabilities are not dropped`);
  check((s.security_opt ?? []).includes("no-new-privileges:true"), `${name}: new privileges allowed`);
  check(s.build?.dockerfile === "deploy/Dockerfile", `${name}: not built from deploy/Dockerfile`);
}
console.log("check_compose: ok");
