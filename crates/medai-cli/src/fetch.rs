//! `medai datasets fetch`: the one place medai downloads anything, only when asked, and always
//! verified against the dataset's published MD5. Local copies are found first.

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use md5::{Digest, Md5};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `medai datasets …`
#[derive(Subcommand, Debug)]
pub enum DatasetsCommand {
    /// Download a MedMNIST 2D dataset (28 px) from Zenodo into the cache and verify its MD5.
    Fetch {
        /// Dataset name, e.g. pneumoniamnist (see `medai datasets list`).
        name: String,
        /// Directory to store it in (default: the medai cache).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// List the datasets `fetch` knows, and where each is found locally.
    List,
}

const ZENODO: &str = "https://zenodo.org/records/10519652/files";

/// MedMNIST v2/v3 2D datasets at 28 px and their official MD5 (from the `medmnist` package's INFO).
pub const MEDMNIST: [(&str, &str); 12] = [
    ("pathmnist", "a8b06965200029087d5bd730944a56c1"),
    ("chestmnist", "02c8a6516a18b556561a56cbdd36c4a8"),
    ("dermamnist", "0744692d530f8e62ec473284d019b0c7"),
    ("octmnist", "c68d92d5b585d8d81f7112f81e2d0842"),
    ("pneumoniamnist", "28209eda62fecd6e6a2d98b1501bb15f"),
    ("retinamnist", "bd4c0672f1bba3e3a89f0e4e876791e4"),
    ("breastmnist", "750601b1f35ba3300ea97c75c52ff8f6"),
    ("bloodmnist", "7053d0359d879ad8a5505303e11de1dc"),
    ("tissuemnist", "ebe78ee8b05294063de985d821c1c34b"),
    ("organamnist", "68e3f8846a6bd62f0c9bf841c0d9eacc"),
    ("organcmnist", "b9ceb9546e10131b32923c5bbeaea2b1"),
    ("organsmnist", "9ab87b696fb54e2a387ebe992d6ed5f1"),
];

/// The medai cache directory: `$MEDAI_CACHE`, else `$XDG_CACHE_HOME/medai`, else `~/.cache/medai`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MEDAI_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("medai");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache")
        .join("medai")
}

fn candidates(name: &str) -> Vec<PathBuf> {
    let file = format!("{name}.npz");
    let mut v = Vec::new();
    if let Some(d) = std::env::var_os("MEDAI_DATA") {
        let d = PathBuf::from(d);
        v.push(d.join(&file));
        v.push(d.join("medmnist").join(&file));
    }
    v.push(PathBuf::from("../shared/data/medmnist").join(&file));
    v.push(PathBuf::from("shared/data/medmnist").join(&file));
    v.push(cache_dir().join(&file));
    v
}

/// A local copy of dataset `name` ($MEDAI_DATA, ../shared/data/medmnist, or the cache), if any.
pub fn find_local(name: &str) -> Option<PathBuf> {
    candidates(name).into_iter().find(|p| p.is_file())
}

fn md5_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| path.display().to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Find or download dataset `name` into `dir` (default: the cache), verifying its MD5.
pub fn fetch(name: &str, dir: Option<&Path>) -> Result<PathBuf> {
    let name = name.to_ascii_lowercase();
    let (_, md5) = MEDMNIST.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        anyhow!(
            "unknown dataset {name:?}; known: {}",
            MEDMNIST.map(|(n, _)| n).join(", ")
        )
    })?;
    let target = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(cache_dir)
        .join(format!("{name}.npz"));
    let existing = if dir.is_some() {
        Some(target.clone()).filter(|p| p.is_file())
    } else {
        find_local(&name)
    };
    if let Some(p) = existing {
        if md5_file(&p)? == *md5 {
            eprintln!(
                "{name}: found {} (MD5 verified), nothing downloaded",
                p.display()
            );
            return Ok(p);
        }
        eprintln!(
            "warning: {} has the wrong MD5; downloading a fresh copy",
            p.display()
        );
    }
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    let url = format!("{ZENODO}/{name}.npz?download=1");
    eprintln!("Downloading {url}");
    let resp = ureq::get(&url)
        .call()
        .map_err(|e| anyhow!("downloading {url}: {e}"))?;
    let tmp = target.with_extension("npz.part");
    {
        let mut out = std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
        std::io::copy(&mut resp.into_reader(), &mut out)
            .with_context(|| format!("downloading {url} to {}", tmp.display()))?;
        out.sync_all().ok();
    }
    let got = md5_file(&tmp)?;
    if got != *md5 {
        let _ = std::fs::remove_file(&tmp);
        bail!("{url}: MD5 {got} does not match the published {md5}; the download was discarded");
    }
    std::fs::rename(&tmp, &target).with_context(|| target.display().to_string())?;
    eprintln!("{name}: saved {} (MD5 verified)", target.display());
    Ok(target)
}

/// Run a `datasets` subcommand.
pub fn run(cmd: DatasetsCommand) -> Result<()> {
    match cmd {
        DatasetsCommand::Fetch { name, dir } => {
            let p = fetch(&name, dir.as_deref())?;
            println!("{}", p.display());
        }
        DatasetsCommand::List => {
            for (n, md5) in MEDMNIST {
                let local = find_local(n)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "-".into());
                println!("{n:<16} md5 {md5}  local: {local}");
            }
        }
    }
    Ok(())
}
