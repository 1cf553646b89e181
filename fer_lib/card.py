"""A shipped model's card (Mitchell et al., 2019): what it is for, how to feed it, how well it does and where it
fails, generated from measurements so that no number in it is typed by hand.

    python -m fer_lib.card model_b   # after `fer-lib ship` and `fer-lib export`: measure, then write the card

``measure`` scores the shipped model on the validation faces (PrivateTest) of
both FER-2013 releases and against FER+'s crowd labels and writes
``<name>.scores.json``; ``render`` turns that, the model's metadata and its
ONNX contract into ``<name>.card.md``, which the package ships and the book shows.
For Model B, PublicTest stays untouched for the multi-seed study; a model whose
weights PrivateTest chose (the best epoch's) is also scored on PublicTest, the
only split that is then held out.
"""

from __future__ import annotations

import json
from pathlib import Path

from fer_lib import data as fer_data
from fer_lib import evaluate, fer2013, ferplus, paper
from fer_lib.live.classify import contract_path, read_metadata
from fer_lib.paths import LIVE_MODEL, MODEL_B, WEIGHTS_DIR, shipped_file, shipped_models

#: What each network is, for the card's first paragraph, by the training configuration's model
NETWORKS = {
    "a": "The paper's Model A (Norhikmah, Lutfhi & Rumini, 2022, Table II): four convolution blocks and two dense\n"
         "blocks without batch normalization or dropout",
    "b": "The paper's Model B (Norhikmah, Lutfhi & Rumini, 2022, Table III): four convolution blocks and two dense\n"
         "blocks with batch normalization and dropout",
    "c": "Model C (the book's chapter 9, beyond the paper): four VGG-style stages of two 3x3 convolutions with\n"
         "batch normalization (32 to 256 channels), dropout 0.1 to 0.4 and a dense layer of 256",
}


#: What each model is for in the book, by the training configuration's model
PURPOSES = {"a": "reproducing the paper", "b": "reproducing the paper",
            "c": "going beyond the paper (the book's chapter 9)"}


def card_file(name: str = MODEL_B) -> Path:
    return WEIGHTS_DIR / f"{name}.card.md"


def scores_file(name: str = MODEL_B) -> Path:
    return WEIGHTS_DIR / f"{name}.scores.json"


def chosen_on_validation(meta: dict) -> bool:
    """Whether PrivateTest chose the weights (the best epoch's), so that only PublicTest is held out."""
    return bool(meta["config"].get("keep_best"))


def measure(csv_data: fer2013.FER2013, folder_data: fer2013.FER2013, name: str = MODEL_B,
            out: Path | None = None) -> dict:
    """Accuracy and per-class recall of a shipped model on PrivateTest (and PublicTest where PrivateTest chose
    its weights) as each release stores it, and against FER+'s majority labels on the release it was trained
    on; written to ``out`` (``<name>.scores.json``)."""
    from fer_lib import models

    meta = models.pretrained_metadata(name)
    model, release = models.load_pretrained(name), meta["release"]
    trained_on = {fer2013.RELEASE_CSV: csv_data, fer2013.RELEASE_FOLDER: folder_data}[release]
    scores: dict = {"split": fer2013.SPLITS["val"], "releases": {}}
    held_out = ("test",) if chosen_on_validation(meta) else ()
    for ds in (csv_data, folder_data):
        result = evaluate.evaluate(model, ds.split("val"))
        scores["releases"][ds.release] = _scores(result)
        for split in held_out:
            held = _scores(evaluate.evaluate(model, ds.split(split)))
            scores.setdefault(fer2013.SPLITS[split], {})[ds.release] = held
        if ds is trained_on:
            split = ds.split("val")
            crowd = evaluate.against_ferplus(result, split, ferplus.majority(split.ids, ds.release))
            scores["ferplus"] = {key: round(value, 4) for key, value in crowd.items()}
    out = out or scores_file(name)
    out.write_text(json.dumps(scores, indent=1) + "\n")
    return scores


def _scores(result: dict) -> dict:
    return {"n": result["n"], "accuracy": round(result["accuracy"], evaluate.STORED_DIGITS),
            "recall": {c: round(float(r), evaluate.STORED_DIGITS) for c, r in result["per_class"]["recall"].items()}}


def table_number(name: str) -> str:
    """The number of a card's table on the book's page of cards, which shows every shipped model's card in
    name order: C.1 for the first."""
    return f"C.{sorted(shipped_models()).index(name) + 1}"


def _recall_table(scores: dict, names: dict[str, str], number: str) -> str:
    """Recall per class and release as an HTML table with a caption: GitHub shows it as it shows
    Markdown, and the book numbers tables by their captions."""
    head = "".join(f"<th>{names[r]}</th>" for r in scores["releases"])
    rows = "\n".join(f"<tr><td>{c}</td>" + "".join(f"<td>{100 * r['recall'][c]:.1f}</td>"
                                                  for r in scores["releases"].values()) + "</tr>"
                   for c in paper.CLASSES)
    return (f"<table>\n<caption>Table {number}. Recall per class (%), on each release's validation images</caption>\n"
            f"<tr><th>class</th>{head}</tr>\n{rows}\n</table>")


def render(meta: dict, scores: dict, contract: dict, number: str = "C.1") -> str:
    """The card's Markdown from the model's metadata, its measured scores and its ONNX contract; ``number`` is
    its table's (``table_number``)."""
    release = meta["release"]
    other = next(r for r in scores["releases"] if r != release)
    ours, theirs, crowd = scores["releases"][release], scores["releases"][other], scores["ferplus"]
    names = {fer2013.RELEASE_CSV: "challenge CSV", fer2013.RELEASE_FOLDER: "Kaggle image folders"}
    pixels = {fer2013.RELEASE_CSV: "original grey values", fer2013.RELEASE_FOLDER: "histogram-equalized JPEGs"}
    equalize = "histogram-equalize a face (`cv2.equalizeHist`)" if contract["equalize"] else "do not equalize a face"
    name, config = meta["model"], meta["config"]
    recipe = (f",\nwith faces augmented every epoch, label smoothing {config['label_smoothing']} and a "
              f"{config['schedule']} learning-rate schedule (profile `{config['profile']}`),"
              if config.get("augment") else "")
    return f"""# Model card: fer_lib's Model {config['model'].upper()}

Generated by `python -m fer_lib.card {name}` from `{name}.json`, `{name}.onnx.json` and `{name}.scores.json`;
do not edit by hand.

## What it is

{NETWORKS[config['model']]}.

Trained for {meta['epochs_trained']} of {config['epochs']} planned epochs with Adam
(learning rate {config['learning_rate']}, batch {config['batch_size']}, seed {config['seed']}){recipe}
on FER-2013's five-class `Training` split of the {names[release]} ({pixels[release]}).
Run `{meta['run']}`, commit `{meta['git_commit'][:7]}`.
Files: `{name}.keras` (Keras 3, sha256 `{meta['sha256'][:16]}...`) and `{name}.onnx` (the same
weights for onnxruntime, sha256 `{contract['sha256'][:16]}...`).

## Intended use

Research and teaching: {PURPOSES[config['model']]}; and the paper's live demonstration
(`fer_lib.live`, `fer-lib webcam`, the notebook widget) on a frontal face{_live_default(name)}.
Not for decisions about people: FER-2013's labels
are one annotator's guess at a posed or acted expression in a web photograph, not what a person feels.

## Classes, in output order

{", ".join(f"{i} {c}" for i, c in enumerate(contract["classes"]))} ("normal" is FER-2013's neutral,
"shock" its surprise; FER-2013's disgust and fear are not among them).

## Input contract

- ONNX (`{name}.onnx`): input `{contract['input']['name']}`, {contract['input']['dtype']}, shape
  (n, {contract['input']['shape'][1]}, {contract['input']['shape'][2]}): {contract['input']['values']}.
- Keras (`{name}.keras`): {meta['input']}.
- Trained on the {names[release]} release, so {equalize} before feeding it.
- Output: float32 (n, {len(contract['classes'])}), {contract['output']['values']}.

## How well it does

On FER-2013's `{scores['split']}` ({ours['n']:,} validation images, {_choice(meta)}):

- as trained ({names[release]}): accuracy **{100 * ours['accuracy']:.1f}%**{_paper_note(config)};
- the same faces as the {names[other]} store them ({pixels[other]}), fed unchanged: {100 * theirs['accuracy']:.1f}%,
  which is why the release decides the pre-processing;
- against FER+'s crowd labels, on the {crowd['with a FER+ majority']:,} images where ten taggers chose one of
  the five classes: {crowd['accuracy, FER+ labels (%)']:.1f}% (FER-2013's own labels on those images:
  {crowd['accuracy, FER-2013 labels (%)']:.1f}%; the two label sets agree on {crowd['labels agree (%)']:.1f}%).
{_held_out(scores, release, other, names)}
{_recall_table(scores, names, number)}

{_training_note(meta)}

## Limitations and known biases

- 48x48 grey faces, frontal and cropped as the Haar cascade crops them; profile views, occlusion,
  strong light and faces smaller than the live detector's minimum are not covered.
- The classes are unequal: recall is far lower for some classes than for others (Table {number}), and
  FER-2013 has more happy faces than any other class.
- FER-2013 records no age, gender or skin tone, so biases along them could not be measured here; its
  faces come from a web image search and are not a balanced sample of people.
- Its labels are noisy: FER+'s ten taggers disagree with them on many images (above).

## License

The code and these weights: MIT (the repository's `LICENSE`). The weights are derived from FER-2013;
see its Kaggle page for the data's terms. FER+ labels: MIT (Microsoft).
"""


def _live_default(name: str) -> str:
    return ",\nwhose default model it is (`fer_lib.paths.LIVE_MODEL`)" if name == LIVE_MODEL else ""


def _choice(meta: dict) -> str:
    if chosen_on_validation(meta):
        return f"which chose the weights: epoch {meta['epoch']}'s, the best of {meta['epochs_trained']}"
    return "used to pick nothing: the weights are\nthe last epoch's"


def _paper_note(config: dict) -> str:
    return (f" (the paper reports\n  {paper.FINAL_VALIDATION_ACCURACY:.1f}% for its Model B)"
            if config["model"] == "b" else "")


def _held_out(scores: dict, release: str, other: str, names: dict[str, str]) -> str:
    """The PublicTest line of a model whose weights PrivateTest chose; nothing for the others."""
    public = scores.get(fer2013.SPLITS["test"])
    if public is None:
        return ""
    return (f"\nOn `{fer2013.SPLITS['test']}` ({public[release]['n']:,} images held out from training and from the "
            f"choice of weights): **{100 * public[release]['accuracy']:.1f}%** as trained ({names[release]}), "
            f"{100 * public[other]['accuracy']:.1f}% on the {names[other]}.\n")


def _training_note(meta: dict) -> str:
    if meta["config"].get("augment"):
        return (f"Training accuracy at that epoch was {100 * meta['train_accuracy']:.1f}%, on augmented faces "
                "(harder than the stored ones) with smoothed labels.")
    return (f"Training accuracy after the last epoch was {100 * meta['train_accuracy']:.1f}%: the model overfits, as\n"
            "the book's chapters on training and evaluation show.")


def current(name: str = MODEL_B) -> str:
    """A shipped model's card as its committed metadata, scores and ONNX contract give it."""
    contract = json.loads(contract_path(shipped_file(name, ".onnx")).read_text())
    return render(read_metadata(shipped_file(name)), json.loads(scores_file(name).read_text()), contract,
                  table_number(name))


def write_card(name: str = MODEL_B) -> Path:
    path = card_file(name)
    path.write_text(current(name))
    return path


if __name__ == "__main__":
    import sys

    shipped = sys.argv[1] if len(sys.argv) > 1 else MODEL_B
    measure(fer_data.load_fer2013(release=fer2013.RELEASE_CSV), fer_data.load_fer2013(release=fer2013.RELEASE_FOLDER),
            shipped)
    print(write_card(shipped))
