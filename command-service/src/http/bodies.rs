//! The names of the request bodies, for the handlers' `#[utoipa::path]`
//! annotations. What each is, is written out in `openapi::inputs` (exactly
//! as strict as the domain's parser), which `openapi::document` puts in
//! their place. A file of its own so that handlers need not name `openapi`,
//! which names them.

use utoipa::ToSchema;

/// Placeholders: named here, described in `openapi::inputs`.
macro_rules! described_in_inputs {
    ($($name:ident),+) => {
        $(
            #[derive(ToSchema)]
            pub struct $name;
        )+
    };
}
described_in_inputs!(
    TransactionInput,
    TransactionBatch,
    Location,
    DeviceInfo,
    AcknowledgementInput,
    ResolutionInput,
    LabelInput,
    LabelBatch
);
