// One person at the console: a browser context of their own (so their own sessionStorage),
// with what the test needs to watch: CSP violations, page errors, requested URLs, overflow.

export const WIDTHS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];

export class Person {
  static async open(browser, baseURL, name, screenshotPath) {
    const context = await browser.newContext({
      baseURL,
      viewport: WIDTHS[0],
      permissions: ['clipboard-read', 'clipboard-write'],
    });
    await context.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
      );
    });
    const page = await context.newPage();
    return new Person(name, context, page, screenshotPath);
  }

  constructor(name, context, page, screenshotPath) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.path = screenshotPath;
    this.errors = [];
    this.urls = [];
    this.overflow = {};
    this.csp = [];
    page.setDefaultTimeout(15000);
    page.on('pageerror', (error) => this.errors.push(`${name}: ${error.message}`));
    page.on('console', (message) => {
      // A refused request is logged by Chromium as a failed resource load: the views show it.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        this.errors.push(`${name}: ${message.text()}`);
      }
    });
    page.on('request', (request) => this.urls.push(request.url()));
    page.on('framenavigated', async (frame) => {
      if (frame === page.mainFrame()) this.csp.push(...(await this._drainCsp()));
    });
  }

  async _drainCsp() {
    try {
      return await this.page.evaluate(() => window.__csp?.splice(0) ?? []);
    } catch {
      return [];
    }
  }

  async cspViolations() {
    return [...this.csp, ...(await this._drainCsp())].map((v) => `${this.name}: ${v}`);
  }

  goto(path) {
    return this.page.goto(path);
  }

  async signIn(key) {
    const form = this.page.getByTestId('signin-form');
    await form.getByTestId('signin-key').fill(key);
    await form.getByTestId('signin-submit').click();
    // Either the shell (the key worked) or the form again with a message.
    await this.page.locator('[data-testid=who], [data-testid=signin-error]').first().waitFor();
  }

  async nav(view) {
    await this.page.getByTestId(`nav-${view}`).click();
    await this.page.getByTestId(`view-${view}`).waitFor();
  }

  /** Full-page screenshots at each width; records whether the page overflows sideways. */
  async shoot(name) {
    const files = [];
    for (const size of WIDTHS) {
      await this.page.setViewportSize(size);
      await this._settle();
      const file = `${name}-${size.width}.png`;
      await this.page.screenshot({ path: this.path(file), fullPage: true, animations: 'disabled' });
      this.overflow[file] = await this.page.evaluate(() => document.documentElement.scrollWidth);
      files.push(file);
    }
    await this.page.setViewportSize(WIDTHS[0]);
    await this._settle();
    return files;
  }

  /** At the top (the header is sticky), after two animation frames: Chart.js resizes its
   * canvas on the frame after a resize. */
  _settle() {
    return this.page.evaluate(
      () =>
        new Promise((done) => {
          window.scrollTo(0, 0);
          requestAnimationFrame(() => requestAnimationFrame(done));
        }),
    );
  }
}
