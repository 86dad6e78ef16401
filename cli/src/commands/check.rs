use anyhow::{Result, bail};

use crate::args::{CheckArgs, Global};
use crate::output::Out;

pub fn run(_g: &Global, _out: &Out, _a: &CheckArgs) -> Result<i32> {
    bail!("check is being built")
}
