// The web console of `tether serve --web`, in headless Chromium driven by
// playwright-core (tether-cli/tests/web.rs runs this).
//
//   node console.mjs http://127.0.0.1:PORT/ CHROMIUM SCREENSHOT.png
//
// Opens the page, calls add(1, 2) and count_to(3, callback), and saves a
// screenshot; prints `ok <check>` per check, `done` at the end. Each wait
// is for something on the page; a failure prints what the page showed.
import { chromium } from "playwright-core";

const [url, executablePath, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const page = await browser.newPage();
const problems = [];
page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });

async function callAndWait(method, args, expected) {
  const before = await page.locator("#log li").count();
  await page.fill("#method", method);
  await page.fill("#args", args);
  await page.click("#run");
  // The call's own line, then the lines it brings, up to its result.
  await page.locator("#log li").nth(before + expected.length).waitFor();
  const lines = await page.locator("#log li").allTextContents();
  return lines.slice(before);
}

try {
  await page.goto(url);
  await page.locator("#status[data-state=open]").waitFor();
  console.log("ok connected");
  await page.locator("#members td", { hasText: "count_to" }).first().waitFor();
  console.log("ok members shown");

  const added = await callAndWait("add", "[1, 2]", ["3"]);
  if (added.at(-1) !== "3") throw new Error(`add(1, 2) showed ${JSON.stringify(added)}`);
  console.log("ok add(1, 2) = 3");

  const counted = await callAndWait("count_to", '[3, "$callback"]',
    ["callback(1)", "callback(2)", "callback(3)", "3"]);
  const expected = ["> root.count_to(3, callback)", "callback(1)", "callback(2)", "callback(3)", "3"];
  if (JSON.stringify(counted) !== JSON.stringify(expected)) {
    throw new Error(`count_to showed ${JSON.stringify(counted)}`);
  }
  console.log("ok three callback lines");

  await callAndWait("counter", "[5]", ["<Counter …>"]);
  await page.locator("#log li button.follow").last().click();
  await page.locator("#members td", { hasText: "increment" }).first().waitFor();
  const incremented = await callAndWait("increment", "[]", ["6"]);
  if (incremented.at(-1) !== "6") throw new Error(`increment() showed ${JSON.stringify(incremented)}`);
  console.log("ok an object result followed and called");
  await page.click("#back");
  await page.locator("#members td", { hasText: "count_to" }).first().waitFor();

  await page.screenshot({ path: screenshot, fullPage: true });
  console.log("ok screenshot");
  if (problems.length) throw new Error(problems.join("\n"));
  console.log("done");
} catch (err) {
  console.log(`FAIL ${err.message}`);
  console.log(`page log: ${JSON.stringify(await page.locator("#log li").allTextContents())}`);
  console.log(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
