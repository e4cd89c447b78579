import { test as base, expect, type Browser, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export { expect };

const artifacts = path.resolve(__dirname, '..', 'artifacts');
const screenshots = path.join(artifacts, 'screenshots');
const consoleLogs = path.join(artifacts, 'console');
const captures = path.join(artifacts, 'captures');
mkdirSync(screenshots, { recursive: true });
mkdirSync(captures, { recursive: true });
mkdirSync(consoleLogs, { recursive: true });

export const PASSWORD = 'correct horse battery staple';

/** Six random base-36 characters: unique enough for one database, short enough to read. */
export function nonce(): string {
  return Math.random().toString(36).slice(2, 8).padEnd(6, '0');
}

/**
 * An email nobody has registered yet, so scenarios never depend on each other's data. Rooms are
 * listed per owner, so every scenario's rooms can keep plain, readable titles.
 */
export function uniqueEmail(who: string): string {
  return `${who}.${nonce()}@example.com`;
}

/** Every page's console output goes to artifacts/console/<test>.log, kept for diagnosis. */
export function recordConsole(page: Page, label: string): void {
  const file = path.join(consoleLogs, `${label.replace(/[^\w.-]+/g, '_')}.log`);
  page.on('console', (msg) => appendFileSync(file, `[${msg.type()}] ${msg.text()}\n`));
  page.on('pageerror', (err) => appendFileSync(file, `[pageerror] ${err.message}\n`));
}

/**
 * A screenshot under artifacts/screenshots/, named for the report: the full page, or with
 * `{ fullPage: false }` only what the screen shows.
 */
export async function shot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: options.fullPage ?? true });
}

/**
 * A text the report quotes as it was seen during the run (an HTTP exchange, a log excerpt), saved
 * as artifacts/captures/<name>.txt; the report's `@capture <name>` lines embed it.
 */
export function capture(name: string, text: string): void {
  writeFileSync(path.join(captures, `${name}.txt`), text.endsWith('\n') ? text : `${text}\n`);
}

/** A secret shown only by its first characters and "…", e.g. a chat ticket in a listing. */
export function cutShort(secret: string, keep = 16): string {
  return secret.length > keep ? `${secret.slice(0, keep)}…` : secret;
}

export const test = base.extend<{ consoleLabel: string }>({
  consoleLabel: async ({}, use, testInfo) => {
    await use(testInfo.titlePath.slice(1).join(' - '));
  },
  page: async ({ page, consoleLabel }, use) => {
    recordConsole(page, consoleLabel);
    await use(page);
  },
});

/** The email field of the login and register forms, in either language. */
export function emailField(page: Page) {
  return page.getByLabel(/email|электронная почта/i);
}

export function passwordField(page: Page) {
  return page.getByLabel(/password|пароль/i);
}

export async function register(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.goto('/register');
  await emailField(page).fill(email);
  await passwordField(page).fill(password);
  await page.getByTestId('register-submit').click();
  await expect(page.getByTestId('current-user')).toHaveText(email);
}

export async function logIn(page: Page, email: string, password = PASSWORD): Promise<void> {
  await page.goto('/login');
  await emailField(page).fill(email);
  await passwordField(page).fill(password);
  await page.getByTestId('login-submit').click();
}

export async function logOut(page: Page): Promise<void> {
  await page.getByTestId('logout').click();
  await expect(page.getByTestId('current-user')).toHaveCount(0);
}

/** Creates a room from the home page and returns its id. */
export async function createRoom(page: Page, title: string): Promise<string> {
  await page.goto('/');
  await page.getByTestId('room-title').fill(title);
  await page.getByTestId('create-room').click();
  const item = page.getByTestId('room-item').filter({ has: page.getByTestId('room-link').getByText(title, { exact: true }) });
  await expect(item).toHaveCount(1);
  const id = await item.getAttribute('data-room-id');
  expect(id, 'a created room carries its id').toMatch(/^[0-9a-f]{24}$/);
  return id as string;
}

/** A signed-in person in a browser context of their own (own cookies, own tabs). */
export async function signedInPerson(browser: Browser, who: string, label: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  recordConsole(page, label);
  const email = uniqueEmail(who);
  await register(page, email);
  return { context, page, email };
}

export async function openChat(page: Page, roomId: string): Promise<void> {
  await page.goto(`/rooms/${roomId}`);
  await expectConnected(page);
}

export async function expectConnected(page: Page): Promise<void> {
  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'open');
  await expect(page.getByTestId('message-input')).toBeEnabled();
}

export async function send(page: Page, text: string): Promise<void> {
  const input = page.getByTestId('message-input');
  await input.fill(text);
  await input.press('Enter');
  await expect(input).toHaveValue('');
}

/** The events shown on a chat page, in order. */
export function events(page: Page, type?: string) {
  const all = page.getByTestId('messages').getByTestId('event');
  return type ? all.and(page.locator(`[data-type="${type}"]`)) : all;
}

/** Texts of the chat messages shown on a page, as "author: text". */
export async function messageLines(page: Page): Promise<string[]> {
  return events(page, 'message').evaluateAll((nodes) =>
    nodes.map((n) => {
      const user = n.querySelector('[data-testid="event-user"]')?.textContent?.trim() ?? '';
      const text = n.querySelector('[data-testid="event-text"]')?.textContent ?? '';
      return `${user}: ${text}`;
    }),
  );
}

export function onlineMembers(page: Page) {
  return page.getByTestId('online').getByTestId('member');
}

/** The repository's root, and the script that runs a native stack there. */
export const root = path.resolve(__dirname, '..', '..');
export const stackScript = path.join(root, 'scripts', 'stack');

/** Restarts the chat service of the stack the tests run against (scripts/stack restart chat). */
export function restartChatService(): void {
  execFileSync(stackScript, ['restart', 'chat'], { stdio: 'inherit', env: process.env });
}

/**
 * The pid of a stack's chat process (of `name`, e.g. `chat-1` with replicas), from the stack's
 * records; the stack the tests run against unless another one's folder is given.
 */
export function chatPid(stackDir = process.env.STACK_DIR ?? path.join(root, '.stack'), name = 'chat'): number {
  return Number(readFileSync(path.join(stackDir, 'pids', `${name}.pid`), 'utf8').split(' ')[0]);
}

/** A TCP port nothing listens on now, for a stack of a scenario's own. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/**
 * A stack of a describe block's own, started with `env` before its tests and stopped after them,
 * beside the one the other scenarios use. Returns the stack's base URL (known once it is up).
 */
export function ownStack(env: NodeJS.ProcessEnv): () => string {
  let baseURL = '';
  base.beforeAll(async () => {
    base.setTimeout(180_000);
    execFileSync(stackScript, ['down'], { env, stdio: 'ignore' });
    const port = await freePort();
    execFileSync(stackScript, ['up'], { env: { ...env, HTTP_PORT: String(port) }, stdio: 'inherit' });
    baseURL = `http://127.0.0.1:${port}`;
  });
  base.afterAll(() => {
    execFileSync(stackScript, ['down'], { env, stdio: 'inherit' });
  });
  return () => baseURL;
}
