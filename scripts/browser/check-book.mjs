// Opens every page of a built book, served on localhost, in headless Chromium and checks what a
// reader would notice: requests leaving the machine, images that do not load, math that did not
// render, links and anchors that lead nowhere, the search box, the print page, pages that scroll
// sideways on a phone, and code blocks too narrow for the crate's 100-column lines.
//
// Usage: node check-book.mjs --url http://127.0.0.1:PORT/ [--chromium /usr/bin/chromium]
//                            [--artifacts DIR] [--screenshot-page mlp.html]
// Prints one line per problem (`FAIL <check> <page>: <what>`) and exits 1 if there is any.
// The browser is the system's Chromium (`executablePath`); playwright-core downloads nothing.

import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const args = parseArgs(process.argv.slice(2));
const base = new URL(args.url ?? fail("--url is required"));
const executablePath = args.chromium ?? "/usr/bin/chromium";
const artifacts = args.artifacts ?? null;
const screenshotPage = args["screenshot-page"] ?? "mlp.html";

const problems = [];
function report(check, where, what) {
  const line = `FAIL ${check} ${where}: ${what}`;
  problems.push(line);
  console.log(line);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) fail(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

function fail(message) {
  console.error(`check-book: ${message}`);
  process.exit(2);
}

// The page's path relative to the book root, for messages.
function rel(url) {
  const u = new URL(url);
  return u.pathname.slice(base.pathname.length) + u.hash || "index.html";
}

function isLocal(url) {
  const u = new URL(url);
  return u.origin === base.origin;
}

// Local resources only: anything else is recorded and aborted.
const remoteRequests = new Set();
const failedResponses = new Map();

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "book-chromium-profile-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
      // Belt and braces: no host name but the test server's resolves, whatever asks.
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
    viewport: { width: 1280, height: 900 },
    serviceWorkers: "block",
  });
  try {
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("data:") || url.startsWith("blob:") || isLocal(url)) return route.continue();
      remoteRequests.add(`${rel(route.request().frame()?.url() ?? base.href)}: request to ${url} leaves localhost`);
      return route.abort("blockedbyclient");
    });
    context.on("request", (request) => {
      const url = request.url();
      if (!(url.startsWith("data:") || url.startsWith("blob:") || isLocal(url))) {
        remoteRequests.add(`${rel(request.frame()?.url() ?? base.href)}: request to ${url} leaves localhost`);
      }
    });
    context.on("response", (response) => {
      if (isLocal(response.url()) && response.status() >= 400) {
        failedResponses.set(response.url(), `${response.status()} (from ${rel(response.frame()?.url() ?? base.href)})`);
      }
    });
    await run(context);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function newPage(context, { width = 1280, height = 900, theme = "light" } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  await page.addInitScript((t) => {
    try {
      localStorage.setItem("mdbook-theme", t);
    } catch (e) {}
    window.print = () => {}; // the print page calls it on load
  }, theme);
  page.on("pageerror", (e) => report("script", rel(page.url()), e.message));
  page.on("console", (m) => {
    if (m.type() === "error") report("console", rel(page.url()), m.text());
  });
  return page;
}

async function goto(page, url) {
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response || !response.ok()) {
    report("http", rel(url), `status ${response ? response.status() : "none"}`);
    return false;
  }
  await page.evaluate(() => document.fonts.ready);
  return true;
}

// The chapters in SUMMARY order, read from the sidebar of the first page.
async function chapterList(page) {
  await goto(page, base.href);
  await page.waitForSelector("mdbook-sidebar-scrollbox a[href]", { timeout: 10000 });
  return page.evaluate(() => {
    const seen = new Set();
    const out = [];
    for (const a of document.querySelectorAll("mdbook-sidebar-scrollbox a[href]")) {
      const u = new URL(a.getAttribute("href"), document.baseURI);
      u.hash = "";
      if (!seen.has(u.href)) {
        seen.add(u.href);
        out.push({ url: u.href, title: a.textContent.trim() });
      }
    }
    return out;
  });
}

// Everything checked inside one page (runs in the browser).
function inspectPage() {
  const main = document.querySelector("main") ?? document.body;
  const images = [...main.querySelectorAll("img")].map((img) => ({
    src: img.getAttribute("src"),
    ok: img.complete && img.naturalWidth > 0,
    alt: img.getAttribute("alt") ?? "",
  }));
  const katexErrors = [...main.querySelectorAll(".katex-error")].map((e) => e.textContent.slice(0, 80));
  // Text outside code and outside rendered math must hold no TeX delimiters.
  const rawTex = [];
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el && el !== main; el = el.parentElement) {
        if (el.matches("pre, code, kbd, samp, script, style, .katex, .katex-display")) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    },
  });
  const texPatterns = [
    /\$\$/,
    /\\\(|\\\)|\\\[|\\\]/,
    /\\(begin|end)\{/,
    /\$[^$\s][^$]*[\\^_{}][^$]*\$/,
  ];
  let text = "";
  for (let n = walker.nextNode(); n; n = walker.nextNode()) text += n.textContent + " ";
  for (const re of texPatterns) {
    const m = text.match(re);
    if (m) {
      const i = m.index;
      rawTex.push(text.slice(Math.max(0, i - 30), i + 50).replace(/\s+/g, " "));
    }
  }
  const links = [...document.querySelectorAll("a[href]")].map((a) => ({
    href: a.getAttribute("href"),
    abs: a.href,
    text: a.textContent.trim().slice(0, 40),
  }));
  const ids = [...document.querySelectorAll("[id], a[name]")].map((e) => e.id || e.getAttribute("name"));
  const headings = [...main.querySelectorAll("h1")].map((h) => h.textContent.trim());
  const paragraphs = [...main.querySelectorAll("p")].map((p) => p.textContent.replace(/\s+/g, " ").trim()).filter((t) => t.length > 0);
  return {
    images,
    katexErrors,
    rawTex,
    links,
    ids,
    headings,
    firstParagraph: paragraphs[0] ?? "",
    paragraphText: paragraphs.join(" "),
    text: main.innerText,
    katexCount: main.querySelectorAll(".katex").length,
    theme: document.documentElement.className,
  };
}

// Elements sticking out of the viewport at the current width, for the narrow-screen check.
function inspectOverflow() {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (["auto", "scroll", "hidden", "clip"].includes(s.overflowX) && p.getBoundingClientRect().right <= width + 1) return true;
    }
    return false;
  };
  const out = [];
  const main = document.querySelector("main") ?? document.body;
  for (const el of main.querySelectorAll(".katex-display, .katex, img, table, pre")) {
    if (el.closest(".katex-display") && el.matches(".katex")) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 1 && !scrolls(el)) {
      out.push(`${el.tagName.toLowerCase()}.${el.className || ""} reaches ${Math.round(r.right)}px`);
    }
  }
  const docWidth = document.scrollingElement.scrollWidth;
  if (docWidth > width + 1) out.push(`the page is ${docWidth}px wide`);
  return { width, out };
}

const idCache = new Map();
async function idsOf(url) {
  if (idCache.has(url)) return idCache.get(url);
  let result = null;
  try {
    const r = await fetch(url);
    if (r.ok) {
      const html = await r.text();
      result = new Set();
      for (const m of html.matchAll(/\s(?:id|name)\s*=\s*["']([^"']*)["']/g)) result.add(decodeEntities(m[1]));
    }
  } catch (e) {
    result = null;
  }
  idCache.set(url, result);
  return result;
}

function decodeEntities(s) {
  return s.replace(/&amp;/g, "&").replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">");
}

const linkChecked = new Map();
async function checkLink(from, link) {
  let u;
  try {
    u = new URL(link.href, from);
  } catch (e) {
    report("link", rel(from), `"${link.text}" -> ${link.href}: not a valid URL`);
    return;
  }
  if (!isLocal(u.href)) {
    if (!["http:", "https:", "mailto:"].includes(u.protocol)) {
      report("link", rel(from), `"${link.text}" -> ${link.href}: external link with scheme ${u.protocol} (only http, https, mailto)`);
    } else if ((u.protocol === "http:" || u.protocol === "https:") && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i.test(u.hostname)) {
      report("link", rel(from), `"${link.text}" -> ${link.href}: external link with an invalid host name`);
    }
    return;
  }
  const target = new URL(u.href);
  target.hash = "";
  const key = u.href;
  if (linkChecked.has(key)) {
    const problem = linkChecked.get(key);
    if (problem) report(problem.check, rel(from), `"${link.text}" -> ${link.href}: ${problem.what}`);
    return;
  }
  let problem = null;
  const ids = await idsOf(target.href);
  if (ids === null) {
    problem = { check: "link", what: `${rel(target.href)} does not exist` };
  } else if (u.hash.length > 1) {
    const id = decodeURIComponent(u.hash.slice(1));
    // Rustdoc pages also accept #NUMBER (source lines) and anchors made by their scripts.
    const rustdocSource = /\/src\//.test(target.pathname) && /^\d+(-\d+)?$/.test(id);
    if (!ids.has(id) && !rustdocSource) problem = { check: "anchor", what: `${rel(target.href)} has no element with id "${id}"` };
  }
  linkChecked.set(key, problem);
  if (problem) report(problem.check, rel(from), `"${link.text}" -> ${link.href}: ${problem.what}`);
}

async function checkPage(page, url) {
  if (!(await goto(page, url))) return null;
  const info = await page.evaluate(inspectPage);
  for (const img of info.images) {
    if (!img.ok) report("image", rel(url), `${img.src} did not load`);
    if (!img.alt.trim()) report("image", rel(url), `${img.src} has no alt text`);
  }
  for (const e of info.katexErrors) report("math", rel(url), `KaTeX error: ${e}`);
  for (const t of info.rawTex) report("math", rel(url), `unrendered TeX in the text: "${t}"`);
  for (const link of info.links) await checkLink(url, link);
  return info;
}

async function searchFinds(page, word, lastUrl) {
  await goto(page, base.href);
  await page.click("#mdbook-search-toggle");
  // The search box listens to key presses, so type the word as a reader would.
  await page.locator("#mdbook-searchbar").pressSequentially(word, { delay: 20 });
  try {
    await page.waitForFunction(() => document.querySelectorAll("#mdbook-searchresults a[href]").length > 0, null, { timeout: 10000 });
  } catch (e) {
    return [];
  }
  const hrefs = await page.$$eval("#mdbook-searchresults a[href]", (as) => as.map((a) => a.href));
  return hrefs.map((h) => {
    const u = new URL(h);
    u.hash = "";
    u.search = "";
    return u.href;
  }).filter((h) => h === lastUrl).length > 0 ? hrefs : [];
}

function wordsOf(text) {
  return new Set((text.toLowerCase().match(/\b[a-z]{6,}\b/g) ?? []));
}

async function run(context) {
  const page = await newPage(context);
  const chapters = await chapterList(page);
  if (chapters.length === 0) return report("pages", "index.html", "the sidebar lists no chapters");
  console.log(`check-book: ${chapters.length} chapters in the sidebar`);

  // Every chapter, in light theme at desktop width.
  const infos = new Map();
  for (const ch of chapters) {
    const info = await checkPage(page, ch.url);
    if (info) infos.set(ch.url, info);
  }
  // The print page: its own checks, and it must hold every chapter.
  const printUrl = new URL("print.html", base).href;
  const print = await checkPage(page, printUrl);
  if (print) {
    const printText = print.paragraphText;
    const printHeadings = new Set(print.headings);
    for (const ch of chapters) {
      const info = infos.get(ch.url);
      if (!info) continue;
      for (const h of info.headings) {
        if (!printHeadings.has(h)) report("print", rel(ch.url), `the print page has no heading "${h}"`);
      }
      const sample = info.firstParagraph.slice(0, 120);
      if (sample && !printText.includes(sample)) report("print", rel(ch.url), `the print page lacks the chapter's first paragraph ("${sample.slice(0, 40)}...")`);
    }
  }
  // A favicon, and it loads.
  await goto(page, base.href);
  const icons = await page.$$eval('link[rel~="icon"]', (ls) => ls.map((l) => l.href));
  if (icons.length === 0) report("theme", "index.html", "no favicon");
  for (const icon of icons) {
    const r = await fetch(icon).catch(() => null);
    if (!r || !r.ok) report("theme", "index.html", `the favicon ${rel(icon)} does not load`);
  }
  // The 404 page is served by GitHub Pages for unknown paths: it must render too.
  await checkPage(page, new URL("404.html", base).href);

  // Search: a word of the last chapter, as rare in the rest of the book as possible.
  const last = chapters[chapters.length - 1];
  const lastInfo = infos.get(last.url);
  if (lastInfo) {
    const others = [...infos.entries()].filter(([u]) => u !== last.url).map(([, i]) => wordsOf(i.text));
    const candidates = [...wordsOf(lastInfo.text)]
      .map((w) => ({ w, n: others.filter((s) => s.has(w)).length }))
      .sort((a, b) => a.n - b.n || b.w.length - a.w.length || (a.w < b.w ? -1 : 1));
    if (candidates.length === 0) {
      report("search", rel(last.url), "the last chapter has no word to search for");
    } else {
      const word = candidates[0].w;
      const hits = await searchFinds(page, word, last.url);
      if (hits.length === 0) report("search", "index.html", `searching "${word}" does not find the last chapter, ${rel(last.url)}`);
      else console.log(`check-book: search for "${word}" finds the last chapter (${rel(last.url)})`);
    }
  }

  // Code blocks fit the crate's 100-column lines at desktop width (sidebar open).
  await goto(page, chapters[0].url);
  const code = await page.evaluate(() => {
    const main = document.querySelector("main");
    const pre = document.createElement("pre");
    const codeEl = document.createElement("code");
    codeEl.className = "language-rust hljs";
    const span = document.createElement("span");
    span.textContent = "x".repeat(100);
    codeEl.appendChild(span);
    pre.appendChild(codeEl);
    main.appendChild(pre);
    const s = getComputedStyle(codeEl);
    const inner = codeEl.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
    const need = span.getBoundingClientRect().width;
    const sidebar = !document.documentElement.classList.contains("sidebar-hidden");
    pre.remove();
    return { inner, need, sidebar };
  });
  if (code.need > code.inner + 0.5) {
    report("theme", rel(chapters[0].url), `a 100-column code line needs ${Math.round(code.need)}px but code blocks are ${Math.round(code.inner)}px wide at 1280px (sidebar ${code.sidebar ? "open" : "closed"})`);
  } else {
    console.log(`check-book: 100 columns of code take ${Math.round(code.need)}px of ${Math.round(code.inner)}px at 1280px`);
  }
  await page.close();

  // A phone-sized screen: nothing may stick out sideways, equations in particular.
  const narrow = await newPage(context, { width: 400, height: 800 });
  for (const url of [...chapters.map((c) => c.url), printUrl]) {
    if (!(await goto(narrow, url))) continue;
    const o = await narrow.evaluate(inspectOverflow);
    for (const what of o.out) report("narrow", rel(url), `at ${o.width}px: ${what}`);
  }

  // Screenshots (CI artefacts) and the dark theme's figure frames.
  const shot = chapters.find((c) => rel(c.url) === screenshotPage) ?? chapters.find((c) => infos.get(c.url)?.images.length > 0) ?? chapters[0];
  if (artifacts) fs.mkdirSync(artifacts, { recursive: true });
  const stem = path.basename(rel(shot.url), ".html");
  if (artifacts) {
    await goto(narrow, shot.url);
    await narrow.screenshot({ path: path.join(artifacts, `${stem}-narrow.png`), fullPage: true });
  }
  await narrow.close();
  for (const theme of ["light", "navy"]) {
    const p = await newPage(context, { theme });
    if (!(await goto(p, shot.url))) continue;
    const seen = await p.evaluate(() => ({
      theme: document.documentElement.className,
      frames: [...document.querySelectorAll("main img")].map((i) => getComputedStyle(i).backgroundColor),
    }));
    if (!seen.theme.split(/\s+/).includes(theme)) report("theme", rel(shot.url), `asked for the ${theme} theme, got "${seen.theme}"`);
    if (theme !== "light") {
      for (const bg of seen.frames) {
        if (bg !== "rgb(255, 255, 255)") report("theme", rel(shot.url), `in the ${theme} theme a figure's background is ${bg}, not white`);
      }
    }
    if (artifacts) {
      const file = path.join(artifacts, `${stem}-${theme}.png`);
      await p.screenshot({ path: file, fullPage: true });
      console.log(`check-book: screenshot ${file}`);
      // And one screen around the first figure, the part worth a look in each theme.
      if (seen.frames.length > 0) {
        await p.evaluate(() => document.querySelector("main img").scrollIntoView({ block: "center" }));
        const figure = path.join(artifacts, `${stem}-${theme}-figure.png`);
        await p.screenshot({ path: figure });
        console.log(`check-book: screenshot ${figure}`);
      }
    }
    await p.close();
  }

  for (const what of remoteRequests) report("offline", what.split(": ")[0], what.slice(what.indexOf(": ") + 2));
  for (const [url, what] of failedResponses) report("http", rel(url), `status ${what}`);
  const links = [...linkChecked.keys()].length;
  console.log(`check-book: ${chapters.length} chapters + print + 404 pages, ${links} distinct internal links checked`);
}

main()
  .then(() => {
    if (problems.length > 0) {
      console.log(`check-book: ${problems.length} problem(s)`);
      process.exit(1);
    }
    console.log("check-book: every page rendered offline, with its images, math, links and anchors");
  })
  .catch((e) => {
    console.error(`check-book: ${e.stack ?? e}`);
    process.exit(2);
  });
