import {
  test,
  expect,
  shot,
  uniqueEmail,
  register,
  createRoom,
  expectConnected,
  logOut,
  openChat,
  send,
  events,
  onlineMembers,
  signedInPerson,
} from './support';
import type { Page } from '@playwright/test';

const phone = { width: 390, height: 844 };
const viewports = [
  { name: 'phone', ...phone },
  { name: 'laptop', width: 1366, height: 768 },
];

async function expectNoHorizontalScroll(page: Page, what: string) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${what} scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
}

/** The chat input and the send button are on the first screen, the page not scrolled. */
async function expectComposerOnFirstScreen(page: Page, height: number) {
  expect(await page.evaluate(() => window.scrollY), 'the page has not been scrolled').toBe(0);
  for (const testid of ['message-input', 'send']) {
    const box = await page.getByTestId(testid).boundingBox();
    expect(box, `${testid} is laid out`).not.toBeNull();
    expect(box!.y + box!.height, `${testid}'s bottom edge is inside the first screen`).toBeLessThanOrEqual(height);
  }
}

/**
 * The header's rows: what it shows (links, buttons, the email), grouped by where each sits
 * vertically. Things read only by screen readers (1 px) are left out.
 */
async function headerRows(page: Page) {
  return page.evaluate(() => {
    const header = document.querySelector('.site-header')!;
    const items = [...header.querySelectorAll<HTMLElement>('a, button, strong')]
      .map((el) => ({ el, rect: el.getBoundingClientRect() }))
      .filter(({ rect }) => rect.width > 2 && rect.height > 2)
      .map(({ el, rect }) => ({ text: (el.innerText || '').trim(), middle: rect.top + rect.height / 2 }));
    const rows: { middle: number; texts: string[] }[] = [];
    for (const item of items) {
      const row = rows.find((r) => Math.abs(r.middle - item.middle) < 10);
      if (row) row.texts.push(item.text);
      else rows.push({ middle: item.middle, texts: [item.text] });
    }
    return { rows: rows.map((r) => r.texts), height: header.getBoundingClientRect().height };
  });
}

for (const viewport of viewports) {
  test(`pages are usable on a ${viewport.name} (${viewport.width}x${viewport.height})`, async ({ page, browser }) => {
    await page.setViewportSize({ width: viewport.width, height: viewport.height });

    await page.goto('/');
    await expectNoHorizontalScroll(page, 'the landing page');
    await shot(page, `20-${viewport.name}-landing`);

    await page.goto('/login');
    await expectNoHorizontalScroll(page, 'the login page');
    await page.goto('/register');
    await expectNoHorizontalScroll(page, 'the register page');

    await register(page, uniqueEmail(`layout-${viewport.name}`));
    const roomId = await createRoom(page, 'A rather long room title that has to wrap on a phone screen');
    await expectNoHorizontalScroll(page, 'the home page');
    await shot(page, `21-${viewport.name}-home`);

    await page.getByTestId('search-query').fill('rather long');
    await page.getByTestId('search-submit').click();
    await expect(page.getByTestId('search-result').first()).toBeVisible();
    await expectNoHorizontalScroll(page, 'the search page');

    // Someone else is in the room and talks too, so the chat shows both sides.
    const guest = await signedInPerson(browser, `guest-${viewport.name}`, `layout-${viewport.name}-guest`);
    await openChat(guest.page, roomId);
    await page.goto(`/rooms/${roomId}`);
    await expectConnected(page);
    await expectComposerOnFirstScreen(page, viewport.height);
    await send(guest.page, 'Привет! Как дела?');
    await send(page, 'Всё хорошо, спасибо. Вот ссылка: https://example.com/' + 'very-long-path-'.repeat(6));
    await send(guest.page, 'Отлично!');
    await expect(events(page, 'message')).toHaveCount(3);
    await expectComposerOnFirstScreen(page, viewport.height);
    await expect(events(page, 'message').last()).toBeInViewport();
    await expectNoHorizontalScroll(page, 'the chat page');
    await shot(page, `22-${viewport.name}-chat`);
    await guest.context.close();
    await logOut(page);
  });
}

for (const lang of ['ru', 'en'] as const) {
  test(`the header is at most two rows on a phone, in ${lang === 'ru' ? 'Russian' : 'English'}`, async ({ page }) => {
    await page.setViewportSize(phone);
    await page.goto(`/lang/${lang}?next=/`);
    const visitor = await headerRows(page);
    expect(visitor.rows, 'a visitor has one row').toHaveLength(1);

    // A long email, as people have: it is cut short rather than given a row of its own.
    await register(page, uniqueEmail('a-rather-long-name.header-check'));
    await expect(page.locator('html')).toHaveAttribute('lang', lang);
    for (const path of ['/', '/search']) {
      await page.goto(path);
      const { rows, height } = await headerRows(page);
      expect(rows.length, `${path}: rows ${JSON.stringify(rows)}`).toBeLessThanOrEqual(2);
      expect(height, `${path}: the header is ${height}px tall`).toBeLessThanOrEqual(96);
      const logoutRow = rows.find((texts) => texts.includes(lang === 'ru' ? 'Выйти' : 'Log out'));
      expect(logoutRow, `log out is shown: ${JSON.stringify(rows)}`).toBeDefined();
      expect(logoutRow!.length, `log out is not alone in its row: ${JSON.stringify(rows)}`).toBeGreaterThan(1);
      await expectNoHorizontalScroll(page, `${path} in ${lang}`);
    }
    await page.goto('/');
    await shot(page, lang === 'ru' ? '30-phone-header-ru' : '31-phone-header-en', { fullPage: false });
  });
}

test('on a phone the online list opens over the messages and the input stays in place', async ({ page, browser }) => {
  await page.setViewportSize(phone);
  await register(page, uniqueEmail('online-phone'));
  const roomId = await createRoom(page, 'Кто в сети');
  const guest = await signedInPerson(browser, 'online-guest', 'online-phone-guest');
  await openChat(guest.page, roomId);
  await openChat(page, roomId);

  const toggle = page.getByTestId('online-toggle');
  await expect(toggle).toBeVisible();
  await expect(page.getByTestId('online-count')).toHaveText('2');
  await expect(page.getByTestId('online-panel')).toBeHidden();
  const before = await page.getByTestId('message-input').boundingBox();

  await toggle.click();

  await expect(toggle).toHaveAttribute('aria-expanded', 'true');
  await expect(onlineMembers(page)).toHaveCount(2);
  for (const member of await onlineMembers(page).all()) await expect(member).toBeInViewport();
  expect(await page.getByTestId('message-input').boundingBox(), 'the input did not move').toEqual(before);
  await expectComposerOnFirstScreen(page, phone.height);
  await shot(page, '32-phone-chat-online-open');

  await page.keyboard.press('Escape');
  await expect(page.getByTestId('online-panel')).toBeHidden();
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await guest.context.close();
});

test('my own messages are marked and on the other side; long words wrap inside the bubble', async ({ page, browser }) => {
  await page.setViewportSize(phone);
  const me = uniqueEmail('bubbles');
  await register(page, me);
  const roomId = await createRoom(page, 'Пузыри');
  const guest = await signedInPerson(browser, 'bubbles-guest', 'bubbles-guest');
  await openChat(guest.page, roomId);
  await openChat(page, roomId);

  const longWord = 'https://example.com/' + 'x'.repeat(150);
  const ordinary = 'обыкновенные слова остаются целыми';
  await send(page, `${longWord} ${ordinary}`);
  await send(guest.page, 'ответ гостя');
  const messages = events(page, 'message');
  await expect(messages).toHaveCount(2);

  const mine = messages.nth(0);
  const theirs = messages.nth(1);
  await expect(mine).toHaveClass(/\bmine\b/);
  await expect(theirs).not.toHaveClass(/\bmine\b/);
  const list = (await page.getByTestId('messages').boundingBox())!;
  const mineBox = (await mine.boundingBox())!;
  const theirsBox = (await theirs.boundingBox())!;
  expect(list.x + list.width - (mineBox.x + mineBox.width), 'mine sit on the right').toBeLessThan(24);
  expect(theirsBox.x - list.x, 'theirs sit on the left').toBeLessThan(24);
  expect(await mine.evaluate((el) => getComputedStyle(el).backgroundColor)).not.toBe(
    await theirs.evaluate((el) => getComputedStyle(el).backgroundColor),
  );

  const layout = await mine.evaluate((item, words) => {
    const text = item.querySelector('[data-testid="event-text"]')!;
    const style = getComputedStyle(text);
    const node = text.firstChild!;
    const content = node.textContent!;
    // Each ordinary word sits on one line: it was not broken apart.
    const split = words.filter((word) => {
      const range = document.createRange();
      const start = content.indexOf(word);
      range.setStart(node, start);
      range.setEnd(node, start + word.length);
      return range.getClientRects().length !== 1;
    });
    const time = item.querySelector('.event-time')!;
    return {
      overflow: item.scrollWidth - item.clientWidth,
      wordBreak: style.wordBreak,
      overflowWrap: style.overflowWrap,
      split,
      timeLines: time.getClientRects().length,
      timeHeight: time.getBoundingClientRect().height,
      lineHeight: parseFloat(getComputedStyle(time).lineHeight) || 20,
    };
  }, ordinary.split(' '));
  expect(layout.overflow, 'the long word stays inside the bubble').toBeLessThanOrEqual(0);
  expect(layout.wordBreak).not.toBe('break-all');
  expect(['anywhere', 'break-word']).toContain(layout.overflowWrap);
  expect(layout.split, 'ordinary words are not broken apart').toEqual([]);
  expect(layout.timeLines, 'the time is one line').toBe(1);
  expect(layout.timeHeight).toBeLessThan(layout.lineHeight * 1.5);
  await expectNoHorizontalScroll(page, 'the chat with a long word');
  await guest.context.close();
});

test('the delete buttons of my rooms line up however the titles wrap', async ({ page }) => {
  await page.setViewportSize(phone);
  await register(page, uniqueEmail('aligned'));
  await createRoom(page, 'Короткое');
  await createRoom(page, 'Очень длинное название комнаты, которое на телефоне займёт две или три строки');
  await createRoom(page, 'Среднее название');

  const rights = await page
    .getByTestId('delete-room')
    .evaluateAll((buttons) => buttons.map((b) => Math.round(b.getBoundingClientRect().right)));
  expect(rights).toHaveLength(3);
  expect(new Set(rights).size, `right edges ${rights}`).toBe(1);
});
