import { test, expect, shot, uniqueEmail, register, createRoom, expectConnected, logOut } from './support';
import type { Page } from '@playwright/test';

const viewports = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'laptop', width: 1366, height: 768 },
];

async function expectNoHorizontalScroll(page: Page, what: string) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${what} scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
}

for (const viewport of viewports) {
  test(`pages are usable on a ${viewport.name} (${viewport.width}x${viewport.height})`, async ({ page }) => {
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

    await page.goto(`/rooms/${roomId}`);
    await expectConnected(page);
    const input = page.getByTestId('message-input');
    await input.scrollIntoViewIfNeeded();
    await expect(input).toBeInViewport();
    await expect(page.getByTestId('send')).toBeInViewport();
    await expectNoHorizontalScroll(page, 'the chat page');
    await shot(page, `22-${viewport.name}-chat`);
    await logOut(page);
  });
}
