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
