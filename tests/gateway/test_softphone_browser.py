"""The web softphone in real headless Chromium against a real gateway with the real engines."""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser_with_mic(espeak_wav):
    """Headless Chromium whose microphone plays Korean speech (the Korean Vosk model hears it)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian chromium not installed (tests/install-system-deps.sh)")
    from playwright.sync_api import sync_playwright

    mic = espeak_wav("안녕하세요. 오늘 날씨가 아주 좋습니다. 감사합니다.", "ko", "mic-ko")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}",
                "--autoplay-policy=no-user-gesture-required",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


def test_typed_question_shows_reply_and_plays_audio(gateway, browser_with_mic, artifacts_dir):
    page = browser_with_mic.new_page()
    page.goto(gateway + "/")
    page.uncheck("#use-mic")
    page.fill("[data-testid=question]", "сколько стоит звонок")
    page.click("[data-testid=send]")
    page.wait_for_selector("#log li.bot:has-text('Звонок бесплатный')", timeout=20000)
    page.wait_for_selector("#log li.intent:has-text('line_cost')")
    # The reply's audio went through Web Audio: at least a second of it has finished playing.
    page.wait_for_function("window.softphone.samplesPlayed > 16000", timeout=20000)
    assert page.locator("#log li.caller").first.inner_text() == "сколько стоит звонок"
    page.screenshot(path=str(artifacts_dir / "softphone-typed.png"), full_page=True)
    page.click("[data-testid=hangup]")
    page.wait_for_selector("#log li.info:has-text('звонок завершён')")


def test_microphone_speech_gives_live_transcript(gateway, browser_with_mic, artifacts_dir):
    page = browser_with_mic.new_page()
    page.goto(gateway + "/")
    page.click("[data-testid=call]")
    page.wait_for_function(
        "window.softphone.events.some(e => e.type === 'transcript'"
        " && /[\\uac00-\\ud7a3]/.test(e.text))",
        timeout=40000,
    )  # the fake microphone's Korean words, recognized by Vosk while the call is up
    page.wait_for_selector("#log li.caller", timeout=30000)
    page.screenshot(path=str(artifacts_dir / "softphone-mic.png"), full_page=True)
    page.click("[data-testid=hangup]")
