// Renders theme/favicon.svg to theme/favicon.png (64x64, transparent corners) in headless
// Chromium, for browsers that do not take SVG favicons. Run from the repository root after
// editing the SVG: node scripts/browser/render-favicon.mjs
import { chromium } from "playwright-core";
import fs from "node:fs";

const svg = fs.readFileSync("theme/favicon.svg", "utf8");
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 64, height: 64 } });
await page.setContent(`<html><body style="margin:0;background:transparent">${svg}</body></html>`);
await page.screenshot({ path: "theme/favicon.png", omitBackground: true, clip: { x: 0, y: 0, width: 64, height: 64 } });
await browser.close();
