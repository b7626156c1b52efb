// check_dockerfile.mjs - what the linters (dockerfilelint, dockerfile-utils) cannot know about
// deploy/Dockerfile: every stage on debian:bookworm-slim, a build stage and a final stage with
// no build tools, a fixed non-root uid, an exec-form entry point, and the final stage's
// packages (printed, one a line, for image_deps.sh to compare with the binaries' needs).
//   node check_dockerfile.mjs --uid UID [--print-runtime-packages] FILE
import { readFileSync } from "node:fs";
import { DockerfileParser } from "dockerfile-ast";

const BUILD_TOOLS = /^(cmake|make|gcc|g\+\+|clang.*|cc|build-essential|pkg-config|check|git|libc6-dev|.*-dev)$/;

function fail(what) {
  console.error(`check_dockerfile: ${what}`);
  process.exit(1);
}
function check(cond, what) {
  if (!cond) fail(what);
}

const args = process.argv.slice(2);
check(args[0] === "--uid", "usage: check_dockerfile.mjs --uid UID [--print-runtime-packages] FILE");
const uid = args[1];
const printPackages = args[2] === "--print-runtime-packages";
const file = args[printPackages ? 3 : 2];
const df = DockerfileParser.parse(readFileSync(file, "utf8"));

// Instructions grouped by stage.
const stages = [];
for (const ins of df.getInstructions()) {
  const kw = ins.getKeyword();
  if (kw === "FROM") stages.push({ from: ins, ins: [] });
  else if (stages.length) stages[stages.length - 1].ins.push(ins);
}
check(stages.length === 2, `${stages.length} stages, want a build stage and a final stage`);
for (const s of stages)
  check(s.from.getImageName() === "debian" && s.from.getImageTag() === "bookworm-slim",
    `a stage is not FROM debian:bookworm-slim: ${s.from.getTextContent()}`);
check(stages[0].from.getBuildStage() === "build", 'the first stage is not named "build"');

// apt-get install arguments of one stage's RUN instructions.
function installed(stage) {
  const pkgs = [];
  for (const ins of stage.ins.filter((i) => i.getKeyword() === "RUN")) {
    const words = ins.getArguments().map((a) => a.getValue());
    for (let i = 0; i < words.length; i++) {
      if (words[i] !== "apt-get" || words[i + 1] !== "install") continue;
      for (let j = i + 2; j < words.length && !["&&", ";", "\\"].includes(words[j]); j++)
        if (!words[j].startsWith("-")) pkgs.push(words[j]);
    }
  }
  return pkgs;
}

const final = stages[1];
const runtime = installed(final);
check(runtime.length > 0, "the final stage installs no runtime libraries");
for (const p of runtime)
  check(!BUILD_TOOLS.test(p), `the final stage installs the build tool or -dev package ${p}`);
check(installed(stages[0]).includes("cmake"), "the build stage does not install cmake");
// The image carries the product only: the build stage configures without the tests (and so
// without the Gemini stand-in, a test tool) and needs neither Check nor Python.
const buildRuns = stages[0].ins.filter((i) => i.getKeyword() === "RUN")
  .flatMap((i) => i.getArguments().map((a) => a.getValue()));
check(buildRuns.includes("-DGBATCH_BUILD_TESTS=OFF"),
  "the build stage configures the tests (want -DGBATCH_BUILD_TESTS=OFF)");
for (const p of ["check", "python3"])
  check(!installed(stages[0]).includes(p), `the build stage installs ${p}, which only the tests need`);
check(runtime.includes("ca-certificates"), "the final stage has no ca-certificates (TLS to Gemini)");

const kw = (k) => final.ins.filter((i) => i.getKeyword() === k);
const users = kw("USER");
check(users.length === 1, "the final stage needs exactly one USER");
check(users[0].getArgumentsContent() === `${uid}:${uid}`,
  `USER is ${users[0].getArgumentsContent()}, want the numeric ${uid}:${uid} (runAsNonRoot checks it)`);
const useradd = final.ins.some((i) => i.getKeyword() === "RUN" &&
  new RegExp(`useradd[^&]*--uid ${uid}\\b`).test(i.getArgumentsContent()));
check(useradd, `the final stage does not create the user ${uid}`);
for (const c of kw("COPY")) {
  const from = c.getFlags().find((f) => f.getName() === "from")?.getValue();
  const text = c.getArgumentsContent();
  check(from === "build" || (from === undefined && /^deploy\//.test(text)),
    `COPY into the final stage from outside the build stage and deploy/: ${text}`);
}
const ep = kw("ENTRYPOINT");
check(ep.length === 1 && ep[0].getArgumentsContent().trim().startsWith("["),
  "the final stage needs one exec-form ENTRYPOINT (signals reach the program)");

if (printPackages) console.log(runtime.join("\n"));
else console.log("check_dockerfile: ok");
