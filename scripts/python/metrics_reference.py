"""Peer values for chess-train's metrics tests (trainer/tests/metrics.rs).

Usage: metrics_reference.py REQUEST.json RESULT.json

REQUEST holds {"cases": [{"kind": ..., ...}, ...]}; RESULT gets one result
object per case, in order. Every value comes from the library that users
would otherwise reach for: scikit-learn (ROC AUC, ROC curve, confusion
matrix, accuracy), SciPy (special functions, ttest_rel, chi2, sqrtm),
statsmodels (Stuart-Maxwell), scikit-image (PSNR, SSIM), NumPy (quantile,
RMSE, mean/SD). JSON has no NaN or infinity: NaN is written as null and
+/-inf as the strings "inf" / "-inf"; an input target of -1 is masked.
"""

import json
import os
import sys
import warnings

import numpy as np
import scipy.linalg
import scipy.special as sp
import scipy.stats as st
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score, roc_curve
from statsmodels.stats.contingency_tables import SquareTable

warnings.simplefilter("ignore")


def enc(x):
    """NaN → None, ±inf → "inf"/"-inf", numpy → Python, recursively."""
    if isinstance(x, dict):
        return {k: enc(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [enc(v) for v in x]
    if isinstance(x, np.ndarray):
        return enc(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if np.isnan(x):
            return None
        if np.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return x


def auc(case):
    t = np.asarray(case["targets"], dtype=float)
    s = np.asarray(case["scores"], dtype=float)
    keep = t != -1
    t, s = t[keep], s[keep]
    try:
        value = roc_auc_score(t, s)
    except ValueError as e:  # scikit-learn before 1.6 raised for a single class
        return {"error": str(e)}
    if np.isnan(value):  # later versions warn and return NaN
        return {"auc": value}
    fpr, tpr, thr = roc_curve(t, s)
    return {"auc": value, "fpr": fpr, "tpr": tpr, "thresholds": thr}


def auc_macro(case):
    t = np.asarray(case["targets"], dtype=float).T  # labels × samples → samples × labels
    s = np.asarray(case["scores"], dtype=float).T
    return {"mean": roc_auc_score(t, s, average="macro"), "per_label": roc_auc_score(t, s, average=None)}


def confusion(case):
    t, p, k = case["targets"], case["predictions"], case["classes"]
    return {"matrix": confusion_matrix(t, p, labels=list(range(k))), "accuracy": accuracy_score(t, p)}


SPECIAL = {
    "betainc": lambda a, b, x: sp.betainc(a, b, x),
    "betaincc": lambda a, b, x: sp.betaincc(a, b, x),
    "gammainc": lambda a, x: sp.gammainc(a, x),
    "gammaincc": lambda a, x: sp.gammaincc(a, x),
    "gammaln": lambda x: sp.gammaln(x),
    "t_two_sided": lambda t, df: 2 * st.t.sf(abs(t), df),
    "t_cdf": lambda t, df: st.t.cdf(t, df),
    "chi2_sf": lambda x, df: st.chi2.sf(x, df),
    "chi2_cdf": lambda x, df: st.chi2.cdf(x, df),
}


def special(case):
    return {"values": [SPECIAL[f](*args) for f, args in case["calls"]]}


def ttest(case):
    r = st.ttest_rel(np.asarray(case["a"], dtype=float), np.asarray(case["b"], dtype=float))
    return {"t": r.statistic, "p": r.pvalue, "df": float(r.df)}


def stuart_maxwell(case):
    table = np.asarray(case["table"], dtype=float)
    r = SquareTable(table, shift_zeros=False).homogeneity(method="stuart_maxwell")
    # statsmodels reports 1 - chi2.cdf, which underflows to 0 for tiny p:
    # the survival function gives the same p with its relative precision.
    return {"statistic": r.statistic, "df": r.df, "p": r.pvalue, "p_sf": st.chi2.sf(r.statistic, r.df)}


def stuart_maxwell_pinv(case):
    """Generalised-inverse Stuart-Maxwell (for tables statsmodels cannot do):
    unused classes dropped, n d' V^+ d with df = rank V."""
    table = np.asarray(case["table"], dtype=float)
    used = (table.sum(0) + table.sum(1)) > 0
    table = table[used][:, used]
    n = table.sum()
    pr = table / n
    row, col = pr.sum(1), pr.sum(0)
    d = col - row
    v = -(pr + pr.T)
    np.fill_diagonal(v, row + col - 2 * np.diag(pr))
    stat = n * d @ np.linalg.pinv(v, rcond=1e-10, hermitian=True) @ d
    df = np.linalg.matrix_rank(v, tol=1e-10)
    return {"statistic": stat, "df": int(df), "p": st.chi2.sf(stat, df) if df > 0 else 1.0}


def quantile(case):
    v = np.asarray(case["values"], dtype=float)
    return {"values": [np.quantile(v, q) for q in case["qs"]]}


def mean_sd(case):
    v = np.asarray(case["values"], dtype=float)
    return {"mean": v.mean(), "sd": v.std(ddof=1)}


def images(case):
    shape = case["shape"]
    dtype = np.dtype(case["dtype"])
    ref = np.asarray(case["reference"], dtype=dtype).reshape(shape)
    test = np.asarray(case["test"], dtype=dtype).reshape(shape)
    r = case["data_range"]
    return {
        "psnr": peak_signal_noise_ratio(ref, test, data_range=r),
        "rmse": np.sqrt(mean_squared_error(ref, test)),
        "ssim": structural_similarity(ref, test, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=r),
    }


def fid(case):
    """The usual FID formula (pytorch-fid's calculate_frechet_distance)."""
    d = case["dim"]
    a = np.asarray(case["a"], dtype=np.float64).reshape(-1, d)
    b = np.asarray(case["b"], dtype=np.float64).reshape(-1, d)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    return {
        "fid": diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean),
        "mean_a": mu1,
        "cov_a_diag": np.diag(s1),
        "cov_a_01": s1[0, 1] if d > 1 else 0.0,
    }


def inception(case):
    """pytorch-fid's FID Inception-v3 with seeded random weights (the real
    ones are a download away): BN statistics calibrated on one random batch
    so that activations stay O(1) through the network. Writes the state dict
    to case["weights"] (safetensors), returns the pooled features of
    case["images"] (grey, unit range) and, for each of case["dirs"], the
    activations pytorch-fid computes from the PNGs it finds there (its own
    reading: PIL, convert("RGB"), ToTensor). Its FID itself needs sqrtm of
    a 2048 x 2048 matrix (a minute here); the "fid" case checks that formula."""
    import torch
    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import get_activations
    from safetensors.torch import save_file

    torch.manual_seed(case["seed"])
    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
            torch.nn.init.uniform_(m.weight, 0.8, 1.2)
            torch.nn.init.normal_(m.bias, 0.0, 0.1)
    net.train()
    with torch.no_grad():
        net(torch.rand(4, 3, 299, 299) * 2 - 1)
    net.eval()
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    save_file(state, case["weights"])

    pfi.load_state_dict_from_url = lambda *args, **kwargs: state
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    shape = case["shape"]
    x = torch.tensor(case["images"], dtype=torch.float32).reshape(-1, 1, *shape).repeat(1, 3, 1, 1)
    with torch.no_grad():
        feats = model(x)[0].flatten(1)
    out = {"features": feats.double().numpy().ravel()}
    for i, d in enumerate(case.get("dirs", [])):
        files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".png"))
        out[f"dir{i}"] = get_activations(files, model, batch_size=50, dims=2048, device="cpu", num_workers=0).ravel()
    return out


KINDS = {
    "auc": auc,
    "auc_macro": auc_macro,
    "confusion": confusion,
    "special": special,
    "ttest": ttest,
    "stuart_maxwell": stuart_maxwell,
    "stuart_maxwell_pinv": stuart_maxwell_pinv,
    "quantile": quantile,
    "mean_sd": mean_sd,
    "images": images,
    "fid": fid,
    "inception": inception,
}


def main():
    with open(sys.argv[1]) as f:
        request = json.load(f)
    results = [enc(KINDS[c["kind"]](c)) for c in request["cases"]]
    with open(sys.argv[2], "w") as f:
        json.dump({"results": results}, f)


if __name__ == "__main__":
    main()
