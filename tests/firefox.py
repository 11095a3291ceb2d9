"""Debian's Firefox ESR with the extension as a temporary add-on, driven over Marionette (`marionette-driver`
from PyPI; Firefox ships the Marionette server, so nothing is downloaded).

Headless, in a fresh profile whose preferences fix the add-on's internal UUID (so its pages have a known
address) and turn off everything that would reach the network. The process dies with the test run
(tests/processes.py). Settings are changed as the options page changes them, through the background page;
a right-click is a real one: a Marionette pointer action opens the page's context menu and the test picks
the extension's item in it, so `menus.onClicked` gets what Firefox itself gives.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import processes
from serving import free_port

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
ADDON_ID = "realcheck@realcheck.example"  # browser_specific_settings.gecko.id in the manifest
ADDON_UUID = "3f1c2a9e-7b4d-4c51-9a0e-5d2b8c6e1f07"
QUIET_PREFERENCES = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "extensions.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
}


class Firefox:
    """A headless Firefox with the unpacked extension installed as a temporary add-on."""

    def __init__(self, extension: Path, profile: Path, log_path: Path):
        from marionette_driver.addons import Addons
        from marionette_driver.marionette import Marionette

        port = free_port()
        profile.mkdir(parents=True)
        preferences = QUIET_PREFERENCES | {
            "marionette.port": port,
            "extensions.webextensions.uuids": json.dumps({ADDON_ID: ADDON_UUID}),
        }
        (profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in preferences.items())
        )
        self._log = open(log_path, "wb")  # noqa: SIM115  closed in close()
        command = [FIREFOX, "--headless", "--marionette", "-remote-allow-system-access", "--no-remote"]
        command += ["--profile", str(profile), "--width", "1280", "--height", "900"]
        self.process = processes.spawn(command, stdout=self._log, stderr=subprocess.STDOUT)
        self.client = Marionette(host="127.0.0.1", port=port, startup_timeout=120)
        self.client.start_session()
        self.client.timeout.script = 60
        Addons(self.client).install(str(extension), temp=True)

    def extension_url(self, path: str) -> str:
        return f"moz-extension://{ADDON_UUID}/{path}"

    def configure(self, wait_s: float, **changes) -> dict:
        """Change settings as the options page does; wait until the content scripts' registration follows."""
        self.client.navigate(self.extension_url("options/options.html"))
        # An extension page's `browser`, seen through Marionette's sandbox: its own objects, unwrapped.
        settings = self.client.execute_async_script(
            """const [changes, resolve] = arguments;
               window.wrappedJSObject.browser.runtime.getBackgroundPage()
                 .then((page) => page.wrappedJSObject.realcheck.saveSettings(changes))
                 .then((saved) => resolve(JSON.parse(JSON.stringify(saved))));""",
            script_args=[changes],
        )
        wanted = sorted({"127.0.0.1", "localhost"} & set(settings["sites"])) if settings["autoMode"] else []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            registered = self.client.execute_async_script(
                """const [resolve] = arguments;
                   window.wrappedJSObject.browser.scripting.getRegisteredContentScripts()
                     .then((scripts) => resolve(JSON.parse(JSON.stringify(scripts.flatMap((s) => s.matches)))));"""
            )
            if all(f"http://{host}/*" in registered for host in wanted):
                return settings
            time.sleep(0.1)
        raise AssertionError(f"content script not registered for {wanted}")

    def open(self, url: str) -> None:
        self.client.navigate(url)

    def evaluate(self, function: str, *args):
        """`function` (JavaScript source) called with `args` in the current page; its result."""
        return self.client.execute_script(f"return ({function})(...arguments);", script_args=list(args))

    def right_click_check(self, element_id: str) -> None:
        """Right-click the element, then choose "Check image with RealCheck" in Firefox's context menu."""
        element = self.client.find_element("id", element_id)
        mouse = self.client.actions.sequence("pointer", "mouse", {"pointerType": "mouse"})
        mouse.pointer_move(10, 10, origin=element).pointer_down(button=2).pointer_up(button=2).perform()
        with self.client.using_context(self.client.CONTEXT_CHROME):
            chosen = self.client.execute_script(
                """const menu = document.getElementById("contentAreaContextMenu");
                   const item = [...menu.querySelectorAll("menuitem")]
                     .find((i) => i.label === "Check image with RealCheck" && !i.hidden);
                   if (!item) return [...menu.querySelectorAll("menuitem")].map((i) => i.label);
                   menu.activateItem(item);
                   return true;"""
            )
        assert chosen is True, f"no RealCheck item in the context menu: {chosen}"

    def close(self) -> None:
        # Firefox may already be gone; stopping its process below is what matters.
        with contextlib.suppress(Exception):
            self.client.delete_session()
        processes.stop(self.process)
        self._log.close()


@contextmanager
def launched(extension: Path, profile: Path, log_path: Path):
    browser = Firefox(extension, profile, log_path)
    try:
        yield browser
    finally:
        browser.close()
