"""Grades one submission's predictions against the hidden labels (proctor's grader contract).

Reads   $PROCTOR_PREDICTIONS/predictions.csv  (default /proctor/predictions), header id,label
        $PROCTOR_LABELS/labels.csv            (default /proctor/labels), header id,label
Writes  $PROCTOR_OUTPUT/scores.json           (default /proctor/output) when the predictions
        are valid:
          {"score": accuracy, "score_secondary": macro-F1, "details": {"n": .., "correct": ..}}
        or $PROCTOR_OUTPUT/invalid.json {"message": "..."} when they are not, and exits 0 in
        both cases. A non-zero exit means the grader itself failed (say, labels missing): the
        submission then fails as `scoring_failed`, which is not the participant's fault.

score is the accuracy (correct / n). score_secondary is the macro-averaged F1: F1 of each
class that occurs in the labels, averaged with equal weight, so a model that ignores a rare
class loses more than accuracy shows. Labels are integers; any integer is accepted as a
prediction, one that is no class is simply wrong.
"""

import csv
import json
import os
import sys

PREDICTIONS_DIR = os.environ.get("PROCTOR_PREDICTIONS", "/proctor/predictions")
LABELS_DIR = os.environ.get("PROCTOR_LABELS", "/proctor/labels")
OUTPUT_DIR = os.environ.get("PROCTOR_OUTPUT", "/proctor/output")
LISTED = 5  # ids named in a message before "and N more"


class Invalid(Exception):
    """The predictions break the contract; the message is shown to the participant."""


def read_table(path, what):
    """Rows of an `id,label` CSV as (line number, id text, label text)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise Invalid(f"{what} is empty; its first line must be the header id,label")
        if [h.strip().lower() for h in header] != ["id", "label"]:
            raise Invalid(f"{what}: the first line must be the header id,label; found {','.join(header)!r}")
        rows = []
        for row in reader:
            if not row or all(not field.strip() for field in row):
                continue
            if len(row) != 2:
                raise Invalid(f"{what} line {reader.line_num}: expected 2 fields (id,label), found {len(row)}")
            rows.append((reader.line_num, row[0].strip(), row[1].strip()))
        return rows


def parse_int(text, what, line, field):
    try:
        return int(text)
    except ValueError:
        raise Invalid(f"{what} line {line}: {field} {text!r} is not an integer") from None


def listed(ids):
    ids = sorted(ids)
    shown = ", ".join(str(i) for i in ids[:LISTED])
    return shown if len(ids) <= LISTED else f"{shown} and {len(ids) - LISTED} more"


def describe_ids(ids):
    """`ids 0..147 step 3` for an arithmetic progression, else a count."""
    ids = sorted(ids)
    if len(ids) >= 2:
        step = ids[1] - ids[0]
        if step > 0 and all(b - a == step for a, b in zip(ids, ids[1:])):
            return f"ids {ids[0]}..{ids[-1]}" + (f" step {step}" if step != 1 else "")
    return f"{len(ids)} ids, those of test.csv"


def load_labels():
    path = os.path.join(LABELS_DIR, "labels.csv")
    try:
        rows = read_table(path, "labels.csv")
        return {int(i): int(label) for _, i, label in rows}
    except (OSError, ValueError, Invalid) as err:
        # The organizer's data is broken: fail loudly, never blame the participant.
        sys.exit(f"grader: cannot read the labels at {path}: {err}")


def load_predictions(truth):
    path = os.path.join(PREDICTIONS_DIR, "predictions.csv")
    expected = f"{len(truth)} ({describe_ids(truth)})"
    if not os.path.isfile(path):
        raise Invalid(
            "predictions.csv is missing: write it to $PROCTOR_OUTPUT/predictions.csv "
            f"with the header id,label and one row per test id; expected {expected}"
        )
    try:
        rows = read_table(path, "predictions.csv")
    except UnicodeDecodeError:
        raise Invalid("predictions.csv is not UTF-8 text") from None
    except csv.Error as err:
        raise Invalid(f"predictions.csv is not valid CSV: {err}") from None

    predicted, first_line = {}, {}
    for line, id_text, label_text in rows:
        i = parse_int(id_text, "predictions.csv", line, "id")
        label = parse_int(label_text, "predictions.csv", line, "label")
        if i in predicted:
            raise Invalid(f"predictions.csv line {line}: id {i} already appears on line {first_line[i]}")
        predicted[i], first_line[i] = label, line

    unknown = predicted.keys() - truth.keys()
    missing = truth.keys() - predicted.keys()
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"missing ids: {listed(missing)}")
        if unknown:
            problems.append(f"ids not in test.csv: {listed(unknown)}")
        raise Invalid(f"predictions.csv has {len(predicted)} rows; expected {expected}; " + "; ".join(problems))
    return predicted


def macro_f1(truth, predicted):
    scores = []
    for c in sorted(set(truth.values())):
        tp = sum(1 for i, t in truth.items() if t == c and predicted[i] == c)
        fp = sum(1 for i, t in truth.items() if t != c and predicted[i] == c)
        fn = sum(1 for i, t in truth.items() if t == c and predicted[i] != c)
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def write_json(name, value):
    with open(os.path.join(OUTPUT_DIR, name), "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.write("\n")


def main():
    truth = load_labels()
    if not truth:
        sys.exit("grader: labels.csv has no rows")
    try:
        predicted = load_predictions(truth)
    except Invalid as err:
        write_json("invalid.json", {"message": str(err)})
        print(f"invalid: {err}")
        return
    correct = sum(1 for i, label in truth.items() if predicted[i] == label)
    scores = {
        "score": correct / len(truth),
        "score_secondary": macro_f1(truth, predicted),
        "details": {"n": len(truth), "correct": correct},
    }
    write_json("scores.json", scores)
    print(json.dumps(scores))


if __name__ == "__main__":
    main()
