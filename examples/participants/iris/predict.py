"""Nearest-centroid baseline: predicts the class whose mean training row is closest.

    python3 predict.py TEST_CSV PREDICTIONS_CSV

Trains on train.csv next to this file (feature columns, then `label`), reads the test rows
(`id`, then the same feature columns) and writes `id,label`. Pure Python, deterministic:
a tie goes to the smaller label.
"""

import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def train(path):
    fieldnames, rows = read_csv(path)
    features = [name for name in fieldnames if name != "label"]
    sums, counts = {}, {}
    for row in rows:
        label = int(row["label"])
        total = sums.setdefault(label, [0.0] * len(features))
        for j, name in enumerate(features):
            total[j] += float(row[name])
        counts[label] = counts.get(label, 0) + 1
    centroids = {label: [v / counts[label] for v in total] for label, total in sums.items()}
    return features, centroids


def predict(features, centroids, row):
    x = [float(row[name]) for name in features]
    best_label, best_distance = None, None
    for label in sorted(centroids):
        distance = sum((a - b) ** 2 for a, b in zip(x, centroids[label]))
        if best_distance is None or distance < best_distance:
            best_label, best_distance = label, distance
    return best_label


def main(test_path, predictions_path):
    features, centroids = train(os.path.join(HERE, "train.csv"))
    _, rows = read_csv(test_path)
    with open(predictions_path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "label"])
        for row in rows:
            writer.writerow([row["id"], predict(features, centroids, row)])
    print(f"wrote {len(rows)} predictions to {predictions_path}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python3 predict.py TEST_CSV PREDICTIONS_CSV")
    main(sys.argv[1], sys.argv[2])
