//! `chess-train import` against files made by PyTorch itself: a CheSS/MoCo
//! checkpoint in the legacy (non-zip) format and a torchvision ResNet-50
//! state dict (zip format). Every imported tensor must equal what the test's
//! Python computes from the same file (prefix stripped, fc dropped, conv1
//! summed over RGB with torch).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::common::{chess_train, ok, python};
use tch::Tensor;

/// Writes `moco.pth.tar` (legacy format) and `imagenet.pth` (zip), plus the
/// expected encoders `moco.expected.safetensors` and `imagenet.expected.safetensors`.
const MAKE_FILES: &str = r#"
import sys, torch, torchvision
from collections import OrderedDict
from safetensors.torch import save_file
d = sys.argv[1]
torch.manual_seed(0)

def encoder(channels):
    m = torchvision.models.resnet50(weights=None)
    m.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    return m

# CheSS / MoCo v2: query and key encoders with an MLP head, wrapped in DataParallel names.
q, k = encoder(1), encoder(1)
q.fc = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 128))
k.fc = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 128))
with torch.no_grad():
    for m in q.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1); m.running_var.uniform_(0.5, 2); m.num_batches_tracked.fill_(1234)
state = OrderedDict()
for n, t in q.state_dict().items(): state["module.encoder_q." + n] = t
for n, t in k.state_dict().items(): state["module.encoder_k." + n] = t
state["module.queue"] = torch.randn(128, 64)
state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
opt = torch.optim.SGD(q.parameters(), lr=0.03, momentum=0.9)
ckpt = {"epoch": 200, "arch": "resnet50", "state_dict": state, "optimizer": opt.state_dict()}
torch.save(ckpt, f"{d}/moco.pth.tar", _use_new_zipfile_serialization=False)
save_file({n: t.contiguous() for n, t in q.state_dict().items() if not n.startswith("fc.")}, f"{d}/moco.expected.safetensors")

# torchvision ImageNet-style state dict (3-channel conv1).
tv = torchvision.models.resnet50(weights=None)
torch.save(tv.state_dict(), f"{d}/imagenet.pth")
exp = {n: t.contiguous() for n, t in tv.state_dict().items() if not n.startswith("fc.")}
exp["conv1.weight"] = tv.conv1.weight.detach().sum(dim=1, keepdim=True).contiguous()
save_file(exp, f"{d}/imagenet.expected.safetensors")
"#;

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

fn assert_same(got: &Path, want: &Path) {
    let (got, want) = (read(got), read(want));
    let mut names: Vec<&String> = want.keys().collect();
    names.sort();
    assert_eq!(got.len(), want.len(), "tensor count: got {:?}", {
        let mut g: Vec<&String> = got.keys().collect();
        g.sort();
        g
    });
    for n in names {
        let (g, w) = (&got[n], &want[n]);
        assert_eq!(g.size(), w.size(), "{n}: shape");
        assert_eq!(g.kind(), w.kind(), "{n}: dtype");
        assert!(
            g.equal(w),
            "{n} differs (max abs {})",
            (g.to_kind(tch::Kind::Double) - w.to_kind(tch::Kind::Double)).abs().max().double_value(&[])
        );
    }
}

#[test]
fn moco_legacy_checkpoint_and_torchvision_state_dict_import_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = Command::new(python()).arg("-c").arg(MAKE_FILES).arg(d).output().unwrap();
    assert!(out.status.success(), "making the files failed:\n{}", String::from_utf8_lossy(&out.stderr));
    // The legacy file really is the non-zip format (no PK zip magic).
    let head = std::fs::read(d.join("moco.pth.tar")).unwrap();
    assert_ne!(&head[..2], b"PK");

    let moco_out = d.join("chess.safetensors");
    let msg = ok(&["import", d.join("moco.pth.tar").to_str().unwrap(), "--out", moco_out.to_str().unwrap()]);
    assert!(msg.contains("MoCo query encoder") && msg.contains("resnet50"), "{msg}");
    assert!(!msg.contains("conv1 summed"), "{msg}");
    assert_same(&moco_out, &d.join("moco.expected.safetensors"));

    let tv_out = d.join("imagenet.safetensors");
    let msg = ok(&["import", d.join("imagenet.pth").to_str().unwrap(), "--out", tv_out.to_str().unwrap()]);
    assert!(msg.contains("torchvision ResNet") && msg.contains("conv1 summed over RGB"), "{msg}");
    assert_same(&tv_out, &d.join("imagenet.expected.safetensors"));

    // An imported file imports again to itself (safetensors input, no Python).
    let again = d.join("again.safetensors");
    ok(&["import", tv_out.to_str().unwrap(), "--out", again.to_str().unwrap(), "--quiet"]);
    assert_same(&again, &d.join("imagenet.expected.safetensors"));
}

#[test]
fn unreadable_or_foreign_files_fail_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.pth");
    std::fs::write(&junk, b"not a pickle at all").unwrap();
    let out = tmp.path().join("o.safetensors");
    let (code, _, err) = chess_train(&["import", junk.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("junk.pth") && err.contains("not a readable PyTorch checkpoint"), "{err}");
    assert!(!out.exists());

    // A pickle holding tensors but no ResNet.
    let other = tmp.path().join("other.pt");
    let script = format!("import torch; torch.save({{'w': torch.zeros(3)}}, r'{}')", other.display());
    assert!(Command::new(python()).arg("-c").arg(script).status().unwrap().success());
    let (code, _, err) = chess_train(&["import", other.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("other.pt") && err.contains("no ResNet"), "{err}");

    let (code, _, err) =
        chess_train(&["import", tmp.path().join("missing.pth").to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(err.contains("missing.pth") && err.contains("no such file"), "{err}");
}

/// Makes `good.pth` (zip format, a torchvision ResNet-18 state dict) and
/// from it: `crc.pth` (one byte of the storage `data/0` flipped, so that
/// member fails its CRC-32), `pickle.pth` (bytes of `data.pkl` garbled and
/// the archive rewritten with fresh CRCs: the pickle itself is damaged),
/// `legacy-pickle.pth` (the legacy format with garbled pickle bytes),
/// `object.pth` (an intact pickle holding an `argparse.Namespace` besides tensors).
const MAKE_DAMAGED: &str = r#"
import sys, struct, zipfile, torch, torchvision
d = sys.argv[1]
torch.manual_seed(0)
m = torchvision.models.resnet18(weights=None)
torch.save(m.state_dict(), f"{d}/good.pth")
raw = bytearray(open(f"{d}/good.pth", "rb").read())
z = zipfile.ZipFile(f"{d}/good.pth")
info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
start = info.header_offset + 30 + name_len + extra_len
raw[start + 17] ^= 0x01
open(f"{d}/crc.pth", "wb").write(raw)
print(info.filename)
with zipfile.ZipFile(f"{d}/pickle.pth", "w", zipfile.ZIP_STORED) as out:
    for i in z.infolist():
        data = bytearray(z.read(i.filename))
        if i.filename.endswith("/data.pkl"):
            for k in range(40, 60):
                data[k] ^= 0x5a
        out.writestr(i.filename, bytes(data))
torch.save(m.state_dict(), f"{d}/legacy.pth", _use_new_zipfile_serialization=False)
raw = bytearray(open(f"{d}/legacy.pth", "rb").read())
for k in range(30, 60):
    raw[k] ^= 0x5a
open(f"{d}/legacy-pickle.pth", "wb").write(raw)
import argparse
# As MoCo's and many training scripts' checkpoints: the run's arguments pickled with the weights.
torch.save({"state_dict": m.state_dict(), "args": argparse.Namespace(arch="resnet18")}, f"{d}/object.pth")
"#;

/// Damaged files are refused as damaged (exit 3), naming the file and the
/// zip member; an intact pickle with objects is refused with the way to
/// import it, and `finetune --init` with such a file creates no run directory.
#[test]
fn damaged_checkpoints_are_refused_naming_what_is_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let made = Command::new(python()).arg("-c").arg(MAKE_DAMAGED).arg(d).output().unwrap();
    assert!(made.status.success(), "making the files failed:\n{}", String::from_utf8_lossy(&made.stderr));
    let member = String::from_utf8_lossy(&made.stdout).trim().to_string();
    let out = d.join("o.safetensors");
    let import = |f: &str| chess_train(&["import", d.join(f).to_str().unwrap(), "--out", out.to_str().unwrap()]);

    // The intact file imports (the damaged copies are made from it).
    let (code, _, err) = import("good.pth");
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(&out).unwrap();

    let (code, _, err) = import("crc.pth");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("crc.pth") && err.contains("damaged") && err.contains(&member) && err.contains("CRC"),
        "{err}"
    );
    assert!(!out.exists());

    for f in ["pickle.pth", "legacy-pickle.pth"] {
        let (code, _, err) = import(f);
        assert_eq!(code, 3, "{f}: {err}");
        assert!(err.contains(f) && err.contains("damaged") && err.contains("pickle"), "{f}: {err}");
        assert!(!err.contains("--allow-pickle"), "a damaged file is no case for --allow-pickle: {err}");
        assert!(!out.exists());
    }
    let (code, _, err) = import("pickle.pth");
    assert_eq!(code, 3);
    assert!(err.contains("data.pkl"), "names the member: {err}");

    // An intact pickle with an object: the hint names the command that has the flag.
    let (code, _, err) = import("object.pth");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("Namespace") && err.contains("chess-train import --allow-pickle"), "{err}");
    let (code, _, err) = chess_train(&[
        "import",
        d.join("object.pth").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--allow-pickle",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");

    // finetune --init with a refused file: exit 3, the same hint, and no run directory left behind.
    let run = d.join("runs/ft");
    let data = d.join("ds");
    crate::common::disc::disc_dataset(&data, 8, 1, 2);
    for f in ["object.pth", "crc.pth"] {
        let (code, _, err) = chess_train(&[
            "finetune",
            "--train",
            data.to_str().unwrap(),
            "--valid",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--init",
            d.join(f).to_str().unwrap(),
            "--arch",
            "resnet18",
            "--size",
            "32",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--quiet",
        ]);
        assert_eq!(code, 3, "{f}: {err}");
        assert!(err.contains(f), "{err}");
        assert!(!run.exists(), "{f}: a refused --init left {}", run.display());
    }
}
