"""``cnnarch lecture``: every numeric claim of the lecture next to the value computed from the real
network, with agree / differ and why."""

from cnnarch.analysis.lecture import check_lecture


def add_parser(sub):
    p = sub.add_parser("lecture", help="check every number the lecture quotes against the real networks")
    p.add_argument("--markdown", action="store_true", help="a markdown table instead of text blocks")
    p.add_argument("--section", default=None, help="only this section (AlexNet, VGG-16, GoogLeNet, ...)")
    p.set_defaults(run=run)


def run(args) -> int:
    claims = check_lecture(args.section)
    if args.markdown:
        print("| section | claim | lecture | computed | status | why | source |")
        print("|---|---|---|---|---|---|---|")
        for c in claims:
            cells = [c.section, c.claim, c.lecture, c.computed, c.status, c.why, c.source]
            print("| " + " | ".join(s.replace("|", "\\|") for s in cells) + " |")
    else:
        section = None
        for c in claims:
            if c.section != section:
                section = c.section
                print(f"\n== {section}")
            print(f"[{c.status:^6}] {c.claim}")
            print(f"         lecture: {c.lecture}   computed: {c.computed}")
            if c.why:
                print(f"         why: {c.why}")
            if c.source:
                print(f"         from: {c.source}")
    n_diff = sum(not c.agree for c in claims)
    print(f"\n{len(claims)} claims: {len(claims) - n_diff} agree, {n_diff} differ (see why)")
    return 0
