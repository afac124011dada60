//! Weight persistence: safetensors for bundles, burnpack for resumable checkpoints, and import of
//! torchvision-format pretrained weights (`.pth` state dict or `.safetensors`).

use burn::module::Module;
use burn::store::{
    BurnpackStore, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};
use std::io::Write;
use std::path::Path;

/// Serialise a module's parameters as safetensors bytes. The bytes depend only on the weights
/// (one metadata entry, so no hash-map ordering), so a reproducible run gives an identical file.
pub fn save_safetensors<M: Module>(model: &M) -> Result<Vec<u8>, String> {
    let mut store = SafetensorsStore::from_bytes(None)
        .clear_metadata()
        .metadata("producer", "medai");
    model.save_into(&mut store).map_err(|e| format!("{e:?}"))?;
    store.get_bytes().map_err(|e| format!("{e:?}"))
}

/// Load parameters saved by [`save_safetensors`] into `model` (which must have the same shape).
pub fn load_safetensors<M: Module>(mut model: M, bytes: &[u8]) -> Result<M, String> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()));
    let res = model.load_from(&mut store).map_err(|e| format!("{e:?}"))?;
    if !res.errors.is_empty() || !res.missing.is_empty() {
        return Err(format!(
            "weights do not fit the architecture: missing {:?}, errors {:?}",
            res.missing, res.errors
        ));
    }
    Ok(model)
}

/// Serialise a module (with parameter ids, so optimiser state still matches) as burnpack bytes.
pub fn save_burnpack<M: Module>(model: &M) -> Result<Vec<u8>, String> {
    let mut store = BurnpackStore::from_bytes(None);
    model.save_into(&mut store).map_err(|e| format!("{e:?}"))?;
    Ok(store.get_bytes().map_err(|e| format!("{e:?}"))?.to_vec())
}

/// Load burnpack bytes written by [`save_burnpack`].
pub fn load_burnpack<M: Module>(mut model: M, bytes: &[u8]) -> Result<M, String> {
    let mut store =
        BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec())));
    let res = model.load_from(&mut store).map_err(|e| format!("{e:?}"))?;
    if !res.errors.is_empty() || !res.missing.is_empty() {
        return Err(format!(
            "checkpoint does not fit the architecture: missing {:?}, errors {:?}",
            res.missing, res.errors
        ));
    }
    Ok(model)
}

/// What a pretrained import did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// Tensors applied to the model.
    pub applied: usize,
    /// Model parameters left at their fresh initialisation (e.g. the new head).
    pub missing: Vec<String>,
    /// Checkpoint tensors that the model does not have.
    pub unused: Vec<String>,
    /// Tensors present in both but of another shape (e.g. the old 1000-class head): kept at
    /// their fresh initialisation.
    pub reshaped: Vec<String>,
}

fn torchvision_remapper() -> KeyRemapper {
    KeyRemapper::new()
        .add_pattern(r"\.downsample\.0\.", ".downsample.conv.")
        .and_then(|r| r.add_pattern(r"\.downsample\.1\.", ".downsample.bn."))
        .and_then(|r| r.add_pattern(r"\.denselayer(\d+)\.", ".$1."))
        .unwrap_or_default()
}

/// Load torchvision-layout pretrained weights (`.pth`/`.pt` state dict or `.safetensors`) into
/// `model`, skipping tensors whose shape does not fit (the classification head is replaced for
/// the task). Fails if nothing at all could be applied.
pub fn import_pretrained<M: Module>(
    mut model: M,
    path: &Path,
) -> Result<(M, ImportReport), String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let result = match ext.as_str() {
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .skip_enum_variants(true)
                .remap(torchvision_remapper())
                .map_indices_contiguous(true)
                .allow_partial(true)
                .validate(false);
            model
                .load_from(&mut store)
                .map_err(|e| format!("{}: {e:?}", path.display()))?
        }
        "pth" | "pt" | "bin" => {
            let mut store = PytorchStore::from_file(path)
                .remap(torchvision_remapper())
                .map_indices_contiguous(true)
                .allow_partial(true)
                .validate(false);
            model
                .load_from(&mut store)
                .map_err(|e| format!("{}: {e:?}", path.display()))?
        }
        _ => {
            return Err(format!(
                "{}: expected a .pth, .pt or .safetensors checkpoint",
                path.display()
            ));
        }
    };
    if result.applied.is_empty() {
        return Err(format!(
            "{}: no tensor of the checkpoint matches this architecture (is it a torchvision checkpoint of the same network?)",
            path.display()
        ));
    }
    let report = ImportReport {
        applied: result.applied.len(),
        missing: result.missing.iter().map(|m| format!("{m:?}")).collect(),
        unused: result.unused.iter().map(|m| format!("{m:?}")).collect(),
        reshaped: result.errors.iter().map(|e| format!("{e:?}")).collect(),
    };
    Ok((model, report))
}

/// Write a file atomically: a temporary sibling, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
