"""Splink (DuckDB backend) on the lists `cargo bench -p cairn-link --bench match -- N DIR` wrote.

Usage: python splink_compare.py DIR [THRESHOLD]

Reads DIR/records.csv (Cairn's import columns) and DIR/truth.csv (source_id,person), trains a
Fellegi–Sunter model comparable to cairn-link's (u by random sampling, m by EM on two blocking
rules, term-frequency adjustment on names), predicts over OR-ed blocking rules, clusters by
connected components at THRESHOLD (default 0.5) and prints pairwise precision, recall and F1
over the clusters (every pair inside a predicted cluster against every pair inside a true
person: the semantics of cairn_link::eval::pairwise) and the time.

Names are brought to Latin with anyascii (the Python port of the any_ascii crate cairn-link
uses), lowercased, particles dropped and tokens sorted, so Splink gets the same transliteration
and order-insensitivity; the folds of transliteration variants and the patronymic handling are
cairn-link's own and are not given to Splink.

Needs: pip install splink anyascii (a venv outside the repository).
"""

import re
import sys
import time
from collections import Counter

import pandas as pd
from anyascii import anyascii

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

PARTICLES = {"al", "el", "bin", "ibn", "bint", "ben", "abu", "bn", "abn"}


def name_tokens(raw):
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = anyascii(raw).lower()
    tokens = [t for t in re.split(r"[^a-z]+", text) if t and t not in PARTICLES]
    return sorted(tokens) or None


def items(*cols):
    out = []
    for c in cols:
        if isinstance(c, str):
            out += [re.sub(r"\s+", " ", i.strip().lower()) for i in c.split(",") if i.strip()]
    return sorted(set(out)) or None


def prepare(df):
    out = pd.DataFrame()
    out["unique_id"] = df["source_id"]
    toks = df["person.name"].map(name_tokens)
    out["name_sorted"] = toks.map(lambda t: " ".join(t) if t else None)
    out["tok_a"] = toks.map(lambda t: t[0] if t else None)
    out["tok_b"] = toks.map(lambda t: t[-1] if t and len(t) > 1 else None)
    out["sex"] = df["person.sex"].where(df["person.sex"].isin(["female", "male"]))
    out["age"] = pd.to_numeric(df["person.age_years"], errors="coerce")
    out["age_group"] = df["person.age_group"]
    found = df["found.at"].fillna("").str.slice(0, 10).replace("", None)
    out["event_date"] = df["incident.date"].fillna(df["last_seen.at"]).fillna(found)
    out["event_month"] = out["event_date"].str.slice(0, 7)
    place = df["incident.place"].fillna(df["last_seen.place"])
    out["place"] = place.str.lower().str.replace(" village", "", regex=False)
    out["lat"] = pd.to_numeric(df["found.lat"].fillna(df["last_seen.lat"]), errors="coerce")
    out["lon"] = pd.to_numeric(df["found.lon"].fillna(df["last_seen.lon"]), errors="coerce")
    out["cell"] = (out["lat"] * 10).round().astype("Int64").astype(str) + ":" + (
        out["lon"] * 10
    ).round().astype("Int64").astype(str)
    out.loc[out["lat"].isna(), "cell"] = None
    out["height"] = pd.to_numeric(df["person.height_cm"].fillna(df["remains.height_cm"]), errors="coerce")
    out["kind"] = df["kind"]
    out["items"] = [
        items(*r)
        for r in zip(
            df["person.clothing"], df["person.effects"], df["person.marks"],
            df["remains.clothing"], df["remains.effects"], df["remains.marks"],
        )
    ]
    return out


def difference(col, thresholds):
    levels = [cll.NullLevel(col), cll.ExactMatchLevel(col)]
    levels += [cll.AbsoluteDifferenceLevel(col, t) for t in thresholds]
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(levels, output_column_name=col)


def settings():
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("name_sorted").configure(term_frequency_adjustments=True),
            cl.ExactMatch("sex"),
            difference("age", [1, 2, 5]),
            cl.AbsoluteDateDifferenceAtThresholds(
                "event_date", input_is_string=True, metrics=["day", "day", "day"], thresholds=[1, 3, 10]
            ),
            cl.ExactMatch("place"),
            cl.DistanceInKMAtThresholds("lat", "lon", [1, 5, 25]),
            cl.ExactMatch("kind"),
            difference("height", [3, 8, 15]),
            cl.ArrayIntersectAtSizes("items", [2, 1]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("name_sorted"),
            block_on("tok_a", "event_month"),
            block_on("tok_b", "event_month"),
            block_on("place", "event_date"),
            block_on("cell", "sex"),
            block_on("sex", "age", "place"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def pairs_in(counts):
    return sum(n * (n - 1) // 2 for n in counts)


def main():
    folder = sys.argv[1]
    threshold = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
    raw = pd.read_csv(f"{folder}/records.csv", dtype=str)
    truth = pd.read_csv(f"{folder}/truth.csv", dtype=str)
    t0 = time.perf_counter()
    df = prepare(raw)
    t_prep = time.perf_counter() - t0

    t1 = time.perf_counter()
    db_api = DuckDBAPI()
    sdf = db_api.register(df)
    linker = Linker(sdf, settings(), log_level=30)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("name_sorted", "event_date")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name_sorted"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("event_date", "age"))
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    ).as_pandas_dataframe()
    t_link = time.perf_counter() - t1

    print(f"records: {len(df)}; splink {__import__('splink').__version__}, duckdb backend")
    print(f"preprocessing (anyascii, tokens): {t_prep:.2f} s")
    print(f"training + predict + cluster at {threshold}: {t_link:.2f} s")
    print("duplicates: " + score(clusters, truth))
    # Other thresholds on the same predictions, to report Splink's best (not timed).
    for other in [0.9, 0.99, 0.999]:
        again = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=other
        ).as_pandas_dataframe()
        print(f"  at {other}: " + score(again, truth))


def score(clusters, truth):
    merged = clusters[["unique_id", "cluster_id"]].merge(
        truth, left_on="unique_id", right_on="source_id"
    )
    tp = pairs_in(Counter(zip(merged["cluster_id"], merged["person"])).values())
    predicted = pairs_in(Counter(merged["cluster_id"]).values())
    actual = pairs_in(Counter(merged["person"]).values())
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return (
        f"F1 {f1:.4f}, precision {precision:.4f}, recall {recall:.4f} "
        f"({actual} true pairs, {predicted} predicted)"
    )


if __name__ == "__main__":
    main()
