// The demo page's three flows as a person does them, in Debian's Chromium
// (headless, driven by playwright-core), against a running demo: sign in,
// connect TikTok through the sandbox's consent page, the analytics grid,
// export now and scheduled.  scripts/test-browser.sh starts the demo and
// runs this with:
//
//   DEMO_ORIGIN   https://localhost:PORT, the demo's nginx
//   DEMO_CONTROL  http://127.0.0.1:PORT, the sandbox's control API
//   SHOTS         where the screenshots go (one per step)
//
// Prints TAP; exits non-zero when a check fails.

"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { chromium, request } = require("playwright-core");

const ORIGIN = process.env.DEMO_ORIGIN;
const CONTROL = process.env.DEMO_CONTROL;
const SHOTS = process.env.SHOTS || "build/browser";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PUBLISH_MS = 60000;

let n = 0;
let failed = 0;

async function step(name, fn) {
    n++;
    try {
        await fn();
        console.log(`ok ${n} - ${name}`);
    } catch (e) {
        failed++;
        console.log(`not ok ${n} - ${name}`);
        console.log(String(e.stack || e).replace(/^/gm, "# "));
        throw e;
    }
}

async function shot(page, name) {
    await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

async function control(p) {
    const r = await fetch(CONTROL + p);
    assert.equal(r.status, 200, `sandbox control ${p}`);
    return r.json();
}

// a datetime-local value a day from now, in the browser's time zone
function tomorrowLocal() {
    const d = new Date(Date.now() + 86400000);
    const pad = (x) => String(x).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
        + `T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function main() {
    assert.ok(ORIGIN && CONTROL, "DEMO_ORIGIN and DEMO_CONTROL are needed");
    fs.mkdirSync(SHOTS, { recursive: true });

    const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        // root has no user namespace sandbox on CI machines
        args: ["--no-sandbox"],
    });
    // the demo's certificates come from its own CA, like make demo's
    const context = await browser.newContext({
        ignoreHTTPSErrors: true,
        viewport: { width: 1100, height: 800 },
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    const user = "alice";

    try {
        await step("sign in: the app's session cookie is a JWT", async () => {
            await page.goto(ORIGIN + "/");
            await page.locator("#view-signin").waitFor();
            assert.ok(!(await page.isVisible("#nav")), "no app before");
            await page.fill("#signin-user", user);
            await shot(page, "00-sign-in.png");
            await page.click("#signin-button");
            await page.locator("#whoami", { hasText: user }).waitFor();
            const cookies = await context.cookies(ORIGIN);
            const c = cookies.find((x) => x.name === "demo_session");
            assert.ok(c, "demo_session cookie");
            assert.match(c.value, /^[\w-]+\.[\w-]+\.[\w-]+$/, "a JWT");
            assert.ok(c.httpOnly && c.secure, "HttpOnly, Secure");

            // nginx (tiktok_jwt) takes the caller from that cookie ...
            let r = await page.request.get(ORIGIN + "/api/tiktok/status");
            assert.equal(r.status(), 200);
            assert.equal((await r.json()).connected, false);
            // ... and nobody without it, nor with a forged one
            const stranger = await request.newContext(
                { ignoreHTTPSErrors: true });
            for (const cookie of ["", "demo_session="
                                  + c.value.replace(/\.[\w-]+$/, ".AAAA")]) {
                r = await stranger.get(ORIGIN + "/api/tiktok/status",
                                       { headers: { Cookie: cookie } });
                assert.equal(r.status(), 401, `401 for "${cookie}"`);
                assert.equal((await r.json()).error.code, "unauthenticated");
                assert.match(r.headers()["www-authenticate"], /^Bearer /);
            }
            await stranger.dispose();
            await page.locator("#connect", { hasText: "Connect TikTok" })
                .waitFor();
            await shot(page, "01-signed-in.png");
        });

        await step("Connect TikTok: the sandbox's consent page", async () => {
            // Cancel first: back, told so, still not connected
            await page.click("#connect");
            await page.click("button[value=cancel]");
            await page.waitForURL(ORIGIN + "/#settings");
            await page.locator("#banner", { hasText: "you cancelled" })
                .waitFor();
            await page.locator("#connect", { hasText: "Connect TikTok" })
                .waitFor();

            await page.click("#connect");
            await page.locator("#consent-title").waitFor();
            const url = new URL(page.url());
            assert.equal(url.pathname, "/v2/auth/authorize/");
            assert.equal(url.searchParams.get("redirect_uri"),
                         ORIGIN + "/api/tiktok/callback",
                         "the demo's real callback");
            assert.equal(url.searchParams.get("code_challenge_method"),
                         "S256");
            assert.equal(await page.textContent("#consent-user"),
                         "Juniper Bakes");
            await shot(page, "02-consent.png");
        });

        await step("Authorize: back connected, the TikTok name shown",
                   async () => {
            await page.click("#authorize");
            await page.waitForURL(ORIGIN + "/#settings");
            await page.locator("#tt-name", { hasText: "Juniper Bakes" })
                .waitFor();
            assert.equal(await page.textContent("#banner"),
                         "TikTok connected");
            assert.ok(await page.isVisible("#disconnect"));
            assert.ok(!(await page.isVisible("#connect")));
            await shot(page, "03-connected.png");
        });

        await step("Analytics: the grid with covers and four metrics",
                   async () => {
            await page.click("#nav a[data-view=analytics]");
            await page.locator(".video").first().waitFor();
            const cards = await page.$$eval(".video", (all) => all.map(
                (v) => ({
                    title: v.querySelector(".title").textContent,
                    cover: v.querySelector("img.cover").src,
                    loaded: v.querySelector("img.cover").complete
                        && v.querySelector("img.cover").naturalWidth > 0,
                    m: ["view_count", "like_count", "comment_count",
                        "share_count"].map((k) =>
                        v.querySelector("dd." + k).textContent),
                })));
            assert.equal(cards.length, 6, "the creator's six videos");
            assert.equal(cards[0].title, "Laminating dough, slowly",
                         "newest first");
            // covers are lazy: wait until every one has loaded
            await page.waitForFunction(() => Array.from(
                document.querySelectorAll(".video img.cover")).every(
                (i) => i.complete && i.naturalWidth > 0));
            for (const c of cards) {
                assert.match(c.cover, /\/cdn\/cover\/\d+\.image\?/);
                for (const m of c.m) {
                    assert.match(m, /^\d{1,3}(,\d{3})*$/, `metric ${m}`);
                }
            }
            const croissants = cards.find(
                (c) => c.title === "Why my croissants failed");
            assert.deepEqual(croissants.m,
                             ["1,250,407", "88,213", "2,904", "1,377"]);
            await shot(page, "04-analytics.png");
        });

        await step("Export: counter at 150, no privacy default, "
                   + "duet greyed", async () => {
            await page.click("#nav a[data-view=export]");
            await page.locator("#export-form").waitFor();
            await page.locator("#privacy option[value=SELF_ONLY]")
                .waitFor({ state: "attached" });
            assert.equal(await page.inputValue("#privacy"), "",
                         "no privacy chosen for the creator");
            assert.deepEqual(
                await page.$$eval("#privacy option",
                                  (o) => o.map((x) => x.value)),
                ["", "PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS",
                 "SELF_ONLY"]);
            assert.ok(await page.isDisabled("#allow-duet"),
                      "duet: the creator turned it off");
            assert.ok(!(await page.isChecked("#allow-duet")));
            assert.ok(await page.isEnabled("#allow-comment"));
            assert.ok(await page.isEnabled("#allow-stitch"));
            assert.ok(await page.$eval("#label-duet",
                                       (l) => l.classList.contains("disabled")
                                           && getComputedStyle(l).color
                                              === "rgb(170, 170, 170)"),
                      "greyed");
            assert.equal(await page.textContent("#creator-name"),
                         "Juniper Bakes");

            // 150 characters, some of them two bytes in UTF-8
            const text = "Sourdough, take two: crème fraîche crumb, a "
                + "36-hour cold proof and a crust that crackles. "
                .repeat(4).slice(0, 150 - 44);
            assert.equal(Array.from(text).length, 150);
            await page.fill("#caption", text + "!");
            assert.equal(await page.textContent("#counter"), "151");
            assert.ok(await page.$eval(".counter",
                                       (c) => c.classList.contains("over")));
            await page.fill("#caption", text);
            assert.equal(await page.textContent("#counter"), "150");
            assert.ok(!(await page.$eval(".counter",
                                         (c) => c.classList.contains("over"))));
            assert.ok(await page.isDisabled("#post"),
                      "no posting before privacy is chosen");
            await shot(page, "05-export-form.png");
        });

        await step("Post now: the status until the TikTok link", async () => {
            await page.selectOption("#privacy", "PUBLIC_TO_EVERYONE");
            await page.check("#allow-comment");
            await page.check("#disclose");
            await page.check("#brand-organic");
            assert.ok(await page.isEnabled("#post"));
            await page.click("#post");
            await page.locator("#progress").waitFor();
            await page.locator("#share-link")
                .waitFor({ timeout: PUBLISH_MS });
            const href = await page.getAttribute("#share-link", "href");
            assert.match(href, new RegExp("^https://www\\.tiktok\\.com/"
                                          + "@juniper\\.bakes/video/\\d{19}$"));
            assert.equal(await page.textContent("#post-status"), "published");

            // what reached "TikTok": the choices the person made
            const { posts } = await control("/posts");
            const p = posts.find((x) => x.post_info
                && x.post_info.title
                && x.post_info.title.startsWith("Sourdough, take two"));
            assert.ok(p, "the sandbox has the post");
            assert.equal(p.post_info.privacy_level, "PUBLIC_TO_EVERYONE");
            assert.equal(p.post_info.disable_comment, false);
            assert.equal(p.post_info.disable_duet, true);
            assert.equal(p.post_info.disable_stitch, true);
            assert.equal(p.post_info.brand_organic_toggle, true);
            await shot(page, "06-published.png");
        });

        await step("Schedule: listed as scheduled", async () => {
            await page.fill("#caption", "Overnight rye, tomorrow");
            await page.selectOption("#privacy", "SELF_ONLY");
            await page.uncheck("#disclose");
            await page.check("#when-later");
            await page.fill("#schedule-at", tomorrowLocal());
            assert.equal(await page.textContent("#post"), "Schedule");
            await page.click("#post");
            await page.locator("#posts tr[data-status=scheduled]",
                               { hasText: "Overnight rye" }).waitFor();
            await shot(page, "07-scheduled.png");
        });

        await step("Cancel the scheduled post", async () => {
            const row = page.locator("#posts tr",
                                     { hasText: "Overnight rye" });
            await row.locator("button.cancel").click();
            await page.locator("#posts tr[data-status=cancelled]",
                               { hasText: "Overnight rye" }).waitFor();
            assert.equal(await page.textContent("#banner"),
                         "Scheduled post cancelled");
            assert.equal(await page.locator("button.cancel").count(), 0);
            await shot(page, "08-cancelled.png");
        });
    } catch (e) {
        await shot(page, "failed.png").catch(() => {});
    } finally {
        await browser.close();
    }

    console.log(`1..${n}`);
    console.log(`${n - failed} passed, ${failed} failed`);
    return failed === 0 && n === 8 ? 0 : 1;
}

main().then((rc) => process.exit(rc), (e) => {
    console.log(`not ok - ${e.stack || e}`);
    process.exit(1);
});
