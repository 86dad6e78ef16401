use anyhow::{Result, bail};

use crate::args::{Global, RepairArgs};
use crate::output::Out;

pub fn run(_g: &Global, _out: &Out, _a: &RepairArgs) -> Result<i32> {
    bail!("repair is being built")
}
