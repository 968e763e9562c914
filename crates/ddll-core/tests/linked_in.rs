//! Linked-in drivers registered by a host (BEAM's static drivers, entries added with
//! `add_driver_entry`): the runtime lets a name be registered twice, and the newest driver of
//! a name is the one every call sees (checked with OTP 25: scenarios/ddll_linked_in.scen).

use ddll_core::{
    DdllCore, DdllError, DriverHost, InfoItem, InfoValue, LoadError, LoadOptions, UnloadOptions,
};

struct Host;

impl DriverHost for Host {
    fn load(&mut self, _full_path: &str, _name: &str) -> Result<(), LoadError> {
        Ok(())
    }
    fn unload(&mut self, _name: &str) {}
}

fn linked(core: &DdllCore<u32>, name: &str) -> Result<InfoValue<u32>, DdllError> {
    core.info(name, InfoItem::LinkedInDriver)
}

#[test]
fn a_name_registered_twice_needs_two_removals() {
    let mut core: DdllCore<u32> = DdllCore::new();
    core.add_linked_in("lx");
    core.add_linked_in("lx");
    assert_eq!(core.loaded_drivers(), ["lx", "lx"]);
    assert_eq!(core.remove_linked_in("lx"), Ok(()));
    assert_eq!(core.loaded_drivers(), ["lx"]);
    assert_eq!(linked(&core, "lx"), Ok(InfoValue::Bool(true)));
    assert_eq!(core.remove_linked_in("lx"), Ok(()));
    assert_eq!(core.remove_linked_in("lx"), Err(DdllError::NotLoaded));
    assert_eq!(linked(&core, "lx"), Err(DdllError::BadArg));
}

#[test]
fn the_newest_driver_of_a_name_shadows_an_older_dynamic_one() {
    let mut core: DdllCore<u32> = DdllCore::new();
    let loaded = core.try_load(&mut Host, 1, "/d", "dx", LoadOptions::default());
    assert!(loaded.result.is_ok());
    core.add_linked_in("dx");
    assert_eq!(core.loaded_drivers(), ["dx", "dx"]);
    assert_eq!(linked(&core, "dx"), Ok(InfoValue::Bool(true)));
    let unload = core.try_unload(1, "dx", UnloadOptions::default());
    assert_eq!(unload.result, Err(DdllError::LinkedInDriver));
    // Removing the linked-in one uncovers the dynamic driver, still loaded by process 1.
    assert_eq!(core.remove_linked_in("dx"), Ok(()));
    assert_eq!(linked(&core, "dx"), Ok(InfoValue::Bool(false)));
    assert_eq!(
        core.info("dx", InfoItem::Processes),
        Ok(InfoValue::Processes(vec![(1, 1)]))
    );
    // A dynamic driver is never removed as a linked-in one.
    assert_eq!(core.remove_linked_in("dx"), Err(DdllError::NotLoaded));
}
