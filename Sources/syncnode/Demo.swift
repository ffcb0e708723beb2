import ArgumentParser

extension SyncNodeCommand { struct Demo: ParsableCommand { func run() throws {} } }
