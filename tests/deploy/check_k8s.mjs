// check_k8s.mjs - validates deploy/k8s against the Kubernetes API schemas (kubernetes-models)
// and checks what the sidecar deployment relies on, which a schema cannot say: the shared
// in-memory /dev/shm, the native or classic sidecar, the same non-root uid, the hardening,
// resources, the DataDog wiring through the downward API, the shards of an Indexed Job
// (completions equal to GBATCH_SHARD_COUNT, a job for every index, a writable results volume),
// the Prometheus wiring (one port in the collector's --prometheus, its container port, its
// health probe and the pod's prometheus.io annotations) and a PodMonitor selecting those pods.
// The PodMonitor is a custom resource of the Prometheus Operator: no schema here, its rules only.
//   node check_k8s.mjs --uid UID FILE...
// Prints one line per object and exits 1 on the first file with a problem, naming it.
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { parseAllDocuments } from "yaml";
import { ConfigMap, Pod } from "kubernetes-models/v1";
import { Job } from "kubernetes-models/batch/v1";

const MODELS = { "v1/ConfigMap": ConfigMap, "v1/Pod": Pod, "batch/v1/Job": Job };
const UNIFIED_TAGS = { DD_ENV: "env", DD_SERVICE: "service", DD_VERSION: "version" };

class Problem extends Error {}
function check(cond, what) {
  if (!cond) throw new Problem(what);
}

function envOf(c) {
  return Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
}

// The effective securityContext field of a container: its own, else the pod's.
function sec(pod, c, key) {
  return c.securityContext?.[key] ?? pod.securityContext?.[key];
}

function checkContainer(pod, c, uid, where) {
  const w = `${where} container ${c.name}`;
  check(sec(pod, c, "runAsNonRoot") === true, `${w}: runAsNonRoot is not true`);
  check(sec(pod, c, "runAsUser") === uid, `${w}: runAsUser is not ${uid}`);
  check(sec(pod, c, "runAsGroup") === uid, `${w}: runAsGroup is not ${uid}`);
  check(c.securityContext?.readOnlyRootFilesystem === true, `${w}: root filesystem not read-only`);
  check(c.securityContext?.allowPrivilegeEscalation === false,
    `${w}: allowPrivilegeEscalation is not false`);
  check(c.securityContext?.capabilities?.drop?.includes("ALL"), `${w}: capabilities not dropped`);
  check((c.securityContext?.capabilities?.add ?? []).length === 0, `${w}: adds capabilities`);
  for (const k of ["requests", "limits"])
    for (const r of ["cpu", "memory"])
      check(c.resources?.[k]?.[r] !== undefined, `${w}: no resources.${k}.${r}`);
  const shm = (c.volumeMounts ?? []).find((m) => m.mountPath === "/dev/shm");
  check(shm !== undefined, `${w}: nothing mounted at /dev/shm`);
  const vol = (pod.volumes ?? []).find((v) => v.name === shm.name);
  check(vol?.emptyDir?.medium === "Memory", `${w}: /dev/shm is not an emptyDir with medium Memory`);
  check(vol.emptyDir.sizeLimit !== undefined, `${w}: the /dev/shm emptyDir has no sizeLimit`);
  check(!shm.readOnly, `${w}: /dev/shm is mounted read-only`);
  return shm.name;
}

// The ring a container uses: --ring/--telemetry shm:RING in its args, else GBATCH_RING.
function ringOf(c) {
  const args = c.args ?? [];
  const i = args.indexOf("--ring");
  if (i >= 0) return args[i + 1];
  const t = args.indexOf("--telemetry");
  if (t >= 0 && args[t + 1].startsWith("shm:")) return args[t + 1].slice(4);
  return envOf(c).GBATCH_RING?.value ?? "default";
}

function checkStatsdTarget(pod, coll, where) {
  const env = envOf(coll);
  if (env.DD_DOGSTATSD_URL) {
    const url = env.DD_DOGSTATSD_URL.value;
    check(/^unixgram:\/\/\//.test(url), `${where}: DD_DOGSTATSD_URL ${url} is not unixgram://`);
    const dir = url.slice("unixgram://".length).replace(/\/[^/]+$/, "");
    const m = (coll.volumeMounts ?? []).find((v) => v.mountPath === dir);
    check(m !== undefined, `${where}: the socket directory ${dir} is not mounted`);
    const v = pod.volumes.find((x) => x.name === m.name);
    check(v?.hostPath?.path !== undefined, `${where}: ${dir} is not a hostPath volume`);
    return "unixgram";
  }
  check(env.DD_AGENT_HOST?.valueFrom?.fieldRef?.fieldPath === "status.hostIP",
    `${where}: DD_AGENT_HOST does not come from status.hostIP`);
  check(/^[0-9]+$/.test(env.DD_DOGSTATSD_PORT?.value ?? ""), `${where}: no DD_DOGSTATSD_PORT`);
  return "udp";
}

// The collector's /metrics: the port of --prometheus [ADDR]:PORT is the container port named
// "metrics", the liveness probe's /healthz and the pod's prometheus.io/port annotation.
// Returns the pod's labels and the port name for the PodMonitors, or null without Prometheus.
function checkPrometheus(coll, labels, annotations, where, seen) {
  const args = coll.args ?? [];
  const i = args.indexOf("--prometheus");
  const scrape = annotations?.["prometheus.io/scrape"];
  if (i < 0) {
    check(scrape === undefined, `${where}: prometheus.io/scrape is set but the collector has ` +
      "no --prometheus");
    return null;
  }
  const m = /^(.*):([0-9]+)$/.exec(args[i + 1] ?? "");
  check(m !== null, `${where}: --prometheus "${args[i + 1]}" is not [ADDR]:PORT`);
  check(m[1] === "" || m[1] === "0.0.0.0" || m[1] === "[::]",
    `${where}: --prometheus ${args[i + 1]} does not listen on the pod's address`);
  const port = Number(m[2]);
  check(port > 0 && port < 65536, `${where}: --prometheus port ${port} is not a port`);
  const cp = (coll.ports ?? []).find((p) => p.containerPort === port);
  check(cp !== undefined, `${where}: the collector has no containerPort ${port} (--prometheus)`);
  check(cp.name === "metrics" && (cp.protocol ?? "TCP") === "TCP",
    `${where}: containerPort ${port} is not the TCP port named "metrics"`);
  const probe = coll.livenessProbe?.httpGet;
  check(probe?.path === "/healthz" && (probe.port === "metrics" || probe.port === port),
    `${where}: the collector's livenessProbe is not GET /healthz on its metrics port`);
  check(scrape === "true", `${where}: prometheus.io/scrape is not "true"`);
  check(annotations?.["prometheus.io/port"] === String(port),
    `${where}: prometheus.io/port "${annotations?.["prometheus.io/port"]}" is not the ` +
    `collector's --prometheus port ${port}`);
  check(annotations?.["prometheus.io/path"] === "/metrics",
    `${where}: prometheus.io/path is not /metrics`);
  seen.add("prometheus");
  return { labels: labels ?? {}, port: cp.name, where };
}

// A PodMonitor must select at least one pod that serves /metrics, at that pod's port name.
function checkPodMonitor(pm, scraped, where) {
  check(pm.apiVersion === "monitoring.coreos.com/v1", `${where}: not monitoring.coreos.com/v1`);
  const sel = pm.spec?.selector?.matchLabels ?? {};
  check(Object.keys(sel).length > 0, `${where}: selects every pod (no matchLabels)`);
  const eps = pm.spec?.podMetricsEndpoints ?? [];
  check(eps.length > 0, `${where}: no podMetricsEndpoints`);
  const pods = scraped.filter((p) => Object.entries(sel).every(([k, v]) => p.labels[k] === v));
  check(pods.length > 0, `${where}: selects none of the pods that serve /metrics`);
  for (const ep of eps) {
    check((ep.path ?? "/metrics") === "/metrics", `${where}: path ${ep.path} is not /metrics`);
    for (const p of pods)
      check(ep.port === p.port, `${where}: port "${ep.port}" is not ${p.where}'s "${p.port}"`);
  }
}

function checkPodSpec(pod, labels, uid, where, seen, annotations = {}, scraped = []) {
  const sidecar = (pod.initContainers ?? []).find((c) => c.name === "collector");
  const classic = (pod.containers ?? []).find((c) => c.name === "collector");
  const proc = (pod.containers ?? []).find((c) => c.name === "processor");
  check(proc !== undefined, `${where}: no processor container`);
  check((sidecar === undefined) !== (classic === undefined),
    `${where}: the collector must be exactly one of a native sidecar or a container`);
  const coll = sidecar ?? classic;
  if (sidecar) {
    check(sidecar.restartPolicy === "Always",
      `${where}: the collector init container is not a native sidecar (restartPolicy: Always)`);
    seen.add("native");
  } else {
    check(coll.args?.includes("--exit-when-producers-done"),
      `${where}: a classic sidecar collector needs --exit-when-producers-done to let the pod end`);
    seen.add("classic");
  }
  check(pod.restartPolicy === "Never" || pod.restartPolicy === "OnFailure",
    `${where}: a batch pod's restartPolicy must be Never or OnFailure`);
  const v1 = checkContainer(pod, coll, uid, where);
  const v2 = checkContainer(pod, proc, uid, where);
  check(v1 === v2, `${where}: collector and processor mount different volumes at /dev/shm`);
  check(ringOf(coll) === ringOf(proc),
    `${where}: collector ring "${ringOf(coll)}" is not processor ring "${ringOf(proc)}"`);
  check(coll.args?.[0] === "collector", `${where}: the collector does not run "collector"`);
  seen.add(checkStatsdTarget(pod, coll, where));
  const env = envOf(coll);
  for (const [name, tag] of Object.entries(UNIFIED_TAGS)) {
    const label = `tags.datadoghq.com/${tag}`;
    check(env[name]?.valueFrom?.fieldRef?.fieldPath === `metadata.labels['${label}']`,
      `${where}: ${name} does not come from the label ${label}`);
    check(labels?.[label] !== undefined, `${where}: no label ${label}`);
  }
  check(envOf(proc).GEMINI_API_KEY?.valueFrom?.secretKeyRef !== undefined,
    `${where}: GEMINI_API_KEY does not come from a Secret`);
  const metrics = checkPrometheus(coll, labels, annotations, where, seen);
  if (metrics !== null)
    scraped.push(metrics);
  return proc;
}

// An Indexed Job's processor runs "shard": pod i runs the lines L of one jobs file with
// (L - 1) % GBATCH_SHARD_COUNT == i. So completions must equal GBATCH_SHARD_COUNT, the jobs file
// must be in a ConfigMap of this file with a job for every index, and the results need a
// writable volume (the root file system is read-only).
function checkShards(job, proc, configMaps, where) {
  check(proc.args?.[0] === "shard", `${where}: an Indexed Job's processor must run "shard"`);
  const env = envOf(proc);
  const volumes = job.spec.template.spec.volumes ?? [];
  const volumeAt = (dir) => {
    const mount = (proc.volumeMounts ?? []).find((m) => m.mountPath === dir);
    return mount && { mount, vol: volumes.find((v) => v.name === mount.name) };
  };
  const count = env.GBATCH_SHARD_COUNT?.value ?? "";
  check(/^[1-9][0-9]*$/.test(count), `${where}: the processor's GBATCH_SHARD_COUNT "${count}" ` +
    "is not a positive number");
  check(job.spec.completions === Number(count),
    `${where}: completions ${job.spec.completions} is not GBATCH_SHARD_COUNT ${count}`);
  const file = env.GBATCH_JOBS_FILE?.value ?? "/etc/gbatch/jobs/jobs.jsonl";
  const jobs = volumeAt(dirname(file));
  check(jobs?.vol?.configMap !== undefined,
    `${where}: the directory of GBATCH_JOBS_FILE ${file} is not a ConfigMap volume`);
  const cm = configMaps.get(jobs.vol.configMap.name);
  check(cm !== undefined,
    `${where}: the jobs ConfigMap ${jobs.vol.configMap.name} is not in this file`);
  const text = cm.data?.[basename(file)];
  check(text !== undefined, `${where}: the jobs ConfigMap has no ${basename(file)}`);
  const lines = text.replace(/\n$/, "").split("\n");
  const ids = new Set();
  lines.forEach((l, n) => {
    if (l.trim() === "") return;
    let job;
    try {
      job = JSON.parse(l);
    } catch (e) {
      throw new Problem(`${where}: ${basename(file)}:${n + 1}: not JSON (${e.message})`);
    }
    check(job.id !== undefined && Array.isArray(job.questions) && !ids.has(JSON.stringify(job.id)),
      `${where}: ${basename(file)}:${n + 1}: not a job with questions and an id of its own`);
    ids.add(JSON.stringify(job.id));
  });
  for (let i = 0; i < Number(count); i++)
    check(lines.some((l, n) => n % Number(count) === i && l.trim() !== ""),
      `${where}: no job for completion index ${i} in ${basename(file)}`);
  // optional: without it the results go to the pod's log
  const out = env.GBATCH_OUTPUT_DIR?.value;
  if (out === undefined)
    return;
  const res = volumeAt(out);
  check(res !== undefined && !res.mount.readOnly && res.vol?.persistentVolumeClaim !== undefined,
    `${where}: GBATCH_OUTPUT_DIR ${out} is not a writable claim (results must outlive the pod)`);
}

function checkFile(file, uid, seen, scraped, monitors) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const configMaps = new Map();
  for (const d of docs) {
    check(d.errors.length === 0, `YAML: ${d.errors.map((e) => e.message).join("; ")}`);
    const obj = d.toJS();
    const key = `${obj.apiVersion}/${obj.kind}`;
    if (obj.kind === "PodMonitor") {
      monitors.push({ obj, file, where: `PodMonitor ${obj.metadata?.name}` });
      continue;
    }
    const Model = MODELS[key];
    check(Model !== undefined, `unexpected object ${key}`);
    const where = `${obj.kind} ${obj.metadata?.name}`;
    try {
      new Model(obj).validate();
    } catch (e) {
      throw new Problem(`${where}: schema: ${e.message}`);
    }
    if (obj.kind === "ConfigMap") configMaps.set(obj.metadata.name, obj);
    if (obj.kind === "Pod") {
      checkPodSpec(obj.spec, obj.metadata.labels, uid, where, seen, obj.metadata.annotations,
        scraped);
      seen.add("pod");
    }
    if (obj.kind === "Job") {
      const t = obj.spec.template;
      const proc = checkPodSpec(t.spec, t.metadata?.labels, uid, where, seen,
        t.metadata?.annotations, scraped);
      if (obj.spec.completionMode === "Indexed") {
        checkShards(obj, proc, configMaps, where);
        seen.add("indexed-job");
      }
    }
    console.log(`ok ${basename(file)}: ${where}`);
  }
}

const args = process.argv.slice(2);
check(args[0] === "--uid", "usage: check_k8s.mjs --uid UID FILE...");
const uid = Number(args[1]);
const seen = new Set();
const scraped = [];
const monitors = [];
for (const f of args.slice(2)) {
  try {
    checkFile(f, uid, seen, scraped, monitors);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    console.error(`check_k8s: ${basename(f)}: ${e.message}`);
    process.exit(1);
  }
}
// after every file: a PodMonitor selects pods of other files
for (const m of monitors) {
  try {
    checkPodMonitor(m.obj, scraped, m.where);
    seen.add("podmonitor");
    console.log(`ok ${basename(m.file)}: ${m.where}`);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    console.error(`check_k8s: ${basename(m.file)}: ${e.message}`);
    process.exit(1);
  }
}
// The deployments deploy/README.md promises, each present at least once.
for (const want of ["pod", "indexed-job", "native", "classic", "udp", "unixgram", "prometheus",
  "podmonitor"]) {
  if (!seen.has(want)) {
    console.error(`check_k8s: no manifest covers "${want}"`);
    process.exit(1);
  }
}
console.log("check_k8s: every manifest is valid");
