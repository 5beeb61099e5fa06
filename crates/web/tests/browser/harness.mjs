// The harness of the browser tests: a real `itb serve --demo` in a fresh folder, headless
// Debian Chromium driven by playwright-core, axe-core on every page, a screenshot of each.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../../..');
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const screenshots = process.env.ITB_SCREENSHOTS ?? join(repo, 'docs', 'screenshots');

/** Starts `itb serve --demo` on a free port in a new folder; resolves to { base, stop }. */
export async function serve() {
  const bin = process.env.ITB_BIN ?? join(repo, 'target', 'debug', 'itb');
  const dir = mkdtempSync(join(tmpdir(), 'itb-browser-'));
  const child = spawn(bin, ['serve', '--demo', '--listen', '127.0.0.1:0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`itb serve did not start in 120 s:\n${out}`)), 120_000);
    const read = (chunk) => {
      out += chunk;
      const m = out.match(/^itb serve listening on (http:\/\/\S+)/m);
      if (m) { clearTimeout(timer); ok(m[1].replace('127.0.0.1', 'localhost')); }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`itb serve exited (${code}):\n${out}`)); });
  });
  return {
    base,
    stop: () => { child.kill('SIGTERM'); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Headless Chromium from Debian. */
export async function browser() {
  return chromium.launch({
    executablePath: process.env.ITB_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** Runs axe-core on the page: every serious or critical violation fails. */
export async function axe(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    const text = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n  ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('\n  ')}`).join('\n');
    throw new Error(`axe-core found ${bad.length} serious or critical violations on ${page.url()}:\n${text}`);
  }
  return result;
}

/** Checks the page (axe) and keeps its screenshot as docs/screenshots/NAME.png. */
export async function check(page, name) {
  await axe(page);
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

/** Signs in through the sign-in page. */
export async function signIn(page, base, username, password) {
  await page.goto(`${base}/sign-in`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]:has-text("Sign in")')]);
}

/** Signs out with the header's button. */
export async function signOut(page) {
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Sign out")')]);
}
