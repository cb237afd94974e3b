"""imsbench: ims-action against Adobe's Node.js samples, all talking to adobe-emulator.

Modules, each with one job:

    paths       where things are (repository, build folder, default binaries)
    dotenv      the one .env reader of the bench (the Rust side has src/runtime/dotenv.rs)
    stats       percentiles, summaries, ratios, counter deltas
    fmt         how numbers are written in the report
    machine     machine facts and the busy check (compilers running, load)
    build       cargo/make builds, the C helpers, npm ci, the lean-variant check
    procs       processes: one-shot runs through spawn_rss, the ActionLoop driver
    emulator    the adobe-emulator process and its /__stats counters
    netns       the network namespace and the delay line (bench/delay_line.c)
    clients     minimal HTTP(S) clients: the physical limits
    launcher    the App Builder route staged as a deployment: launcher, binary, seal
    flows       the two credential flows and the params both sides get
    loopback    sections on loopback: process overhead, warm loop, token counts
    wan         the section over the delayed link with TLS: cold, warm, App Builder
    store       the shared token store: runs examples/store-bench.rs, reduces its runs
    release     this release against the one before: the "before" binary, cold start side by side
    crowd       activations at once in one container: bursts of N in one Node process (peer-node/crowd.js)
    sizes       binary, zip and node_modules sizes
    targets     the goals and their PASS/MISS verdicts
    render_md   BENCHMARKS.md
    render_svg  the charts under docs/
    cli         options and the order of a run

Standard library only (Python 3.11+). Entry points: `python3 bench/run.py` and, with bench/ on
the path, `python3 -m imsbench`.
"""
