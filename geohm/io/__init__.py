"""Everything that opens or writes files. Nothing outside ``geohm.io`` does."""
