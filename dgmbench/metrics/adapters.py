"""The built-in metric adapters: registry entry -> metric kernel.

Each function takes a :class:`~dgmbench.metrics.context.MetricContext` and returns the
group's MetricValues; the kernels (one file per metric in this package) do the arithmetic.
Policies that belong to one metric (KID's default subset size, MMD's subsets, NLL's subset)
live here, beside the call, and are stated in the values' notes.
"""

from __future__ import annotations

import math
import warnings

import torch

from ..errors import DataError
from ..protocol import SamplesModel, likelihood_kind
from ..reference import kde_validation
from ..results import MetricValue
from .clip_score import class_prompts
from .clip_score import clip_fd as clip_fd_kernel
from .clip_score import clip_score as clip_score_kernel
from .cmmd import cmmd as cmmd_kernel
from .context import MetricContext
from .fid import fid_from_features, fid_from_stats, fid_infinity, stats_from_features
from .inception_score import MISSING_WEIGHTS_NOTE, inception_score_unavailable
from .inception_score import inception_score as is_kernel
from .kde import kde_log_likelihood, kde_metric_values
from .kid import kid as kid_kernel
from .likelihood import likelihood_metrics
from .mmd import mmd_rbf
from .mode_coverage import mode_coverage as mode_coverage_kernel
from .prdc import prdc as prdc_kernel
from .registry import GROUPS
from .speed import measure_speed

KID_USUAL_SUBSET = 1000


def fid(ctx: MetricContext) -> list[MetricValue]:
    """FID from streaming statistics (bootstrap interval from kept features), and FID-inf on request."""
    o, ext, fo = ctx.options, ctx.extractor, ctx.extractor.feature_output
    ref_stats = ctx.main_reference().stats[fo]
    linalg_device = ctx.device if o.fid_device == "auto" else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if fo in ctx.features:
            mv = fid_from_features(ctx.features[fo], ref_stats, bootstrap=o.fid_bootstrap, seed=ctx.seed,
                                   interval=o.fid_interval, stats_gen=ctx.stats[fo], device=linalg_device,
                                   **ctx.prov())
        else:  # interval "none": the streaming statistics suffice
            mv = fid_from_stats(ctx.stats[fo], ref_stats, **ctx.prov())
    for w in caught:
        warnings.warn(str(w.message), stacklevel=2)
    mv.extra["n_ref"] = ctx.n_ref
    out = [mv]
    if o.fid_inf:
        try:
            delta_std = mv.std if mv.extra.get("interval", "").startswith("delta") else None  # its influence
            out.append(fid_infinity(ctx.features[fo], ref_stats, seed=ctx.seed, device=linalg_device,
                                    fid_delta_std=delta_std, **ctx.prov(ext)))
        except DataError as e:  # too few samples for subsets of >= 2.4 d: say so instead of failing the run
            out.append(MetricValue(name="fid_inf", value=None, n=ctx.n, note=str(e), **ctx.prov(ext)))
    return out


def kid(ctx: MetricContext) -> list[MetricValue]:
    """KID over random subsets; default subset size min(1000, min(n, n_ref) // 2), noted when below 1000."""
    o, fo = ctx.options, ctx.extractor.feature_output
    size, note = o.kid_subset_size, None
    if size is None:
        m = min(ctx.n, ctx.n_ref)
        size = min(KID_USUAL_SUBSET, m // 2)
        if size < KID_USUAL_SUBSET:
            note = (f"KID subset size {size} (< the usual 1000: half of the {m} samples, so that "
                    "subsets differ and the std means something)")
    mv = kid_kernel(ctx.features[fo], ctx.main_reference().features[fo], subsets=o.kid_subsets, subset_size=size,
                    seed=ctx.seed, device=ctx.device, **ctx.prov())
    if note:
        mv.note = note
    return [mv]


def prdc(ctx: MetricContext) -> list[MetricValue]:
    """Precision, recall, density and coverage with k-NN balls of the reference features."""
    fo = ctx.extractor.feature_output
    o = ctx.options
    res = prdc_kernel(ctx.main_reference().features[fo], ctx.features[fo], k_pr=o.pr_k, k_dc=o.dc_k, device=ctx.device,
                      interval=o.prdc_interval, seed=ctx.seed)
    return list(res.metric_values(**ctx.prov()))


def inception_score(ctx: MetricContext) -> list[MetricValue]:
    """IS of the extractor's class logits (value None with the reason when it has none)."""
    ext = ctx.extractor  # always built: the group needs "logits"
    lo = getattr(ext, "logits_output", None)
    if lo:
        o = ctx.options
        return [is_kernel(ctx.features[lo], splits=o.is_splits, bootstrap=o.is_bootstrap, seed=ctx.seed, **ctx.prov())]
    note = MISSING_WEIGHTS_NOTE if ext.name == "inception" else f"the '{ext.name}' extractor has no class logits"
    return [inception_score_unavailable(note, n=ctx.n, **ctx.prov())]


def cond_acc(ctx: MetricContext) -> list[MetricValue]:
    """Conditional accuracy: the fraction of samples the extractor's classifier assigns to the class the
    model was asked for (argmax of its logits == requested label), with its binomial std
    sqrt(p (1 - p) / n). None with the reason for an unconditional model or an extractor without logits."""
    ext = ctx.extractor
    lo = getattr(ext, "logits_output", None)
    if ctx.labels is None:
        return [MetricValue(name="cond_acc", value=None, n=ctx.n, note="unconditional samples: no requested class",
                            **ctx.prov())]
    if not lo:
        why = f"the '{getattr(ext, 'name', None)}' extractor has no class logits"
        return [MetricValue(name="cond_acc", value=None, n=ctx.n, note=why, **ctx.prov())]
    logits = ctx.features[lo]
    if logits.shape[0] != ctx.labels.shape[0]:
        raise DataError(f"{ctx.labels.shape[0]} labels for {logits.shape[0]} samples")
    pred = logits.argmax(dim=1).cpu()
    n = int(pred.shape[0])
    p = float((pred == ctx.labels.cpu().long()).double().mean())
    return [MetricValue(name="cond_acc", value=p, n=n, unit="fraction", std=math.sqrt(max(p * (1 - p), 0.0) / n),
                        extra={"classes": int(logits.shape[1])}, **ctx.prov())]


def mmd(ctx: MetricContext) -> list[MetricValue]:
    """Unbiased RBF MMD^2 on the extractor's features or the raw samples, on seeded subsets of at most mmd_max_n."""
    o = ctx.options
    if o.mmd_on == "features":
        fo = ctx.extractor.feature_output
        x, y, prov = ctx.features[fo], ctx.main_reference().features[fo], ctx.prov()
    else:
        x, y, prov = ctx.raw, ctx.reference.split().data, {"extractor": "raw"}
    g = torch.Generator().manual_seed(ctx.seed)
    sub = []
    for t in (x, y):
        if t.shape[0] > o.mmd_max_n:
            t = t[torch.randperm(t.shape[0], generator=g)[: o.mmd_max_n]]
        sub.append(t)
    mv = mmd_rbf(sub[0], sub[1], bandwidth=o.mmd_bandwidth, permutations=o.mmd_permutations, seed=ctx.seed, **prov)
    mv.n = int(x.shape[0])
    if x.shape[0] > o.mmd_max_n or y.shape[0] > o.mmd_max_n:
        mv.note = f"MMD on seeded subsets of at most {o.mmd_max_n} points per set"
        mv.extra["max_n"] = o.mmd_max_n
    return [mv]


def kde(ctx: MetricContext) -> list[MetricValue]:
    """Parzen-window log-likelihood of the scored split (bandwidth chosen on a validation split)."""
    o = ctx.options
    val, test, val_desc = kde_validation(ctx.data, ctx.data_dir)
    if test.shape[0] > o.kde_max_test:
        test = test[torch.randperm(test.shape[0], generator=torch.Generator().manual_seed(ctx.seed))[: o.kde_max_test]]
    res = kde_log_likelihood(ctx.raw, val, test, grid=o.kde_grid, seed=ctx.seed)
    out = kde_metric_values(res, eight_bit=ctx.is_image, extractor="raw")
    for mv in out:
        mv.extra["validation"] = val_desc
    return out


def mode_coverage(ctx: MetricContext) -> list[MetricValue]:
    """Modes captured, high-quality fraction (within 3 std) and reverse KL on Gaussian-mixture toys."""
    names = [s.name for s in GROUPS["mode_coverage"].metrics]
    if ctx.data.modes is None or ctx.data.mode_std is None:
        why = f"{ctx.data.name} is not a Gaussian-mixture toy with known modes"
        return [MetricValue(name=m, value=None, note=why) for m in names]
    res = mode_coverage_kernel(ctx.raw, ctx.data.modes, float(ctx.data.mode_std), seed=ctx.seed)
    base = {"counts": res.counts, "num_modes": res.num_modes, "threshold_std": 3.0}
    out = []
    for name, value, unit in (("modes_captured", float(res.modes_captured), "modes"),
                              ("hq_fraction", res.high_quality_fraction, None),
                              ("mode_rkl", res.reverse_kl, "nats")):
        extra = dict(base, interval=res.interval_methods.get(name, "none"), ci_level=res.level)
        lo = hi = std = None
        if name in res.intervals:
            lo, hi, std = res.intervals[name]
            if name != "hq_fraction":
                extra["bootstrap"] = res.replicates
        out.append(MetricValue(name=name, value=value, n=res.n, unit=unit, extractor="raw", ci_low=lo, ci_high=hi,
                               std=std, extra=extra))
    return out


def clip_score(ctx: MetricContext) -> list[MetricValue]:
    """CLIP score of the images against "a photo of a {class}" prompts of their labels."""
    o, prov = ctx.options, ctx.prov(ctx.clip)
    names = ctx.data.class_names
    if ctx.labels is None:
        return [MetricValue(name="clip_score", value=None, n=ctx.n, note="CLIP score needs class labels: score a "
                            "class-conditional model or labelled samples", **prov)]
    if not names:
        return [MetricValue(name="clip_score", value=None, n=ctx.n,
                            note=f"{ctx.data.name} has no class names to build prompts from", **prov)]
    prompts = class_prompts(names, ctx.data.name, o.clip_template)
    mv = clip_score_kernel(ctx.clip_embeddings, ctx.clip.encode_text(prompts), ctx.labels, w=o.clip_w, **prov)
    mv.extra["prompts"] = prompts
    return [mv]


def clip_fd(ctx: MetricContext) -> list[MetricValue]:
    """Frechet distance of CLIP image embeddings (bootstrap interval as FID's)."""
    o, prov = ctx.options, ctx.prov(ctx.clip)
    cref = ctx.reference.features(ctx.clip, ["clip"], keep_features=False)
    if o.fid_interval == "none" and o.fid_bootstrap <= 1:
        return [fid_from_stats(stats_from_features(ctx.clip_embeddings), cref.stats["clip"], name="clip_fd", **prov)]
    return [clip_fd_kernel(ctx.clip_embeddings, cref.stats["clip"], bootstrap=o.fid_bootstrap, seed=ctx.seed,
                           interval=o.fid_interval, **prov)]


def cmmd(ctx: MetricContext) -> list[MetricValue]:
    """CMMD: 1000 x unbiased RBF MMD^2 (sigma 10) of the CLIP image embeddings against the reference's."""
    cref = ctx.reference.features(ctx.clip, ["clip"], keep_features=True)
    return [cmmd_kernel(ctx.clip_embeddings, cref.features["clip"], **ctx.prov(ctx.clip))]


def likelihood(ctx: MetricContext) -> list[MetricValue]:
    """The model's NLL (nats) and bits/dim on the scored split (a seeded subset with nll_max_n)."""
    model, o = ctx.model, ctx.options
    if model is None or likelihood_kind(model) == "none":
        why = "no model was given" if model is None else \
            getattr(model, "no_likelihood_reason", None) or "the model has no log_likelihood()"
        return [MetricValue(name=s.name, value=None, note=f"not available: {why}") for s in GROUPS["nll"].metrics]
    data, total = ctx.data.data, ctx.data.data.shape[0]
    if o.nll_max_n is not None and total > o.nll_max_n:
        g = torch.Generator().manual_seed(ctx.seed)
        data = data[torch.randperm(total, generator=g)[: o.nll_max_n].sort().values]
    mvs = likelihood_metrics(model, data, images=ctx.is_image, batch_size=o.likelihood_batch_size or ctx.batch_size,
                             seed=ctx.seed, progress=ctx.progress)
    if data.shape[0] < total:
        for mv in mvs:
            mv.note = f"on a seeded subset of {data.shape[0]} of the {total} {ctx.data.split} items (nll_max_n)"
            mv.extra["max_n"] = o.nll_max_n
    return mvs


def speed(ctx: MetricContext) -> list[MetricValue]:
    """Samples/s of the model (balanced labels for a class-conditional model) and its NFE."""
    model, o = ctx.model, ctx.options
    if model is None:
        return [MetricValue(name="samples_per_s", value=None, note="not available: no model was given")]
    bs = o.speed_batch_size or ctx.batch_size
    labels = None
    if getattr(model, "num_classes", None) and not isinstance(model, SamplesModel):
        labels = torch.arange(bs) % int(model.num_classes)
    return measure_speed(model, batch_size=bs, warmup=o.speed_warmup, repeats=o.speed_repeats, seed=ctx.seed,
                         labels=labels)
