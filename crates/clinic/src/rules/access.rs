//! Who may do what: the roles and the role-permission table (docs/ROLES.md is this table,
//! and a test checks every endpoint against every role).

use std::fmt;
use std::str::FromStr;

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Clinical nurse specialist: runs the refill clinic, titrates under protocol.
    NurseSpecialist,
    /// Consultant in rehabilitation medicine or neurology.
    Consultant,
    /// Neurosurgeon: implants, revisions, replacements.
    Neurosurgeon,
    /// Physiotherapist: assessment and outcome measures.
    Physiotherapist,
    /// Pharmacist: the drug, and a second checker at refills.
    Pharmacist,
    /// Administrator: users, audit and settings; no clinical record.
    Admin,
    /// A patient: their own record only.
    Patient,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::NurseSpecialist,
        Role::Consultant,
        Role::Neurosurgeon,
        Role::Physiotherapist,
        Role::Pharmacist,
        Role::Admin,
        Role::Patient,
    ];
    /// The name in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::NurseSpecialist => "nurse_specialist",
            Role::Consultant => "consultant",
            Role::Neurosurgeon => "neurosurgeon",
            Role::Physiotherapist => "physiotherapist",
            Role::Pharmacist => "pharmacist",
            Role::Admin => "admin",
            Role::Patient => "patient",
        }
    }
    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Role::NurseSpecialist => "nurse specialist",
            Role::Consultant => "consultant",
            Role::Neurosurgeon => "neurosurgeon",
            Role::Physiotherapist => "physiotherapist",
            Role::Pharmacist => "pharmacist",
            Role::Admin => "administrator",
            Role::Patient => "patient",
        }
    }
    /// A clinician (may sign as the second checker of a refill).
    pub fn is_clinical(self) -> bool {
        !matches!(self, Role::Admin | Role::Patient)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("'{}' is not a role; use one of {}", text.chars().take(40).collect::<String>(), names.join(", "))
        })
    }
}

/// What a request does, for the permission table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read a patient's record (a patient: their own only).
    ReadRecord,
    /// Register a patient or change their details.
    RegisterPatient,
    /// Record an implant, explant, keys, battery estimates.
    ManagePumps,
    /// Authorise a prescription.
    Prescribe,
    /// Record a refill (as the nurse).
    Refill,
    /// Record the review of a refill gap.
    ReviewGap,
    /// Record or run an interrogation.
    Interrogate,
    /// Book and move appointments.
    ManageAppointments,
    /// See the refill worklist and the lists of the service.
    Worklist,
    /// Read and verify the audit log.
    Audit,
    /// Add and list users.
    ManageUsers,
    /// Change the service's settings.
    ManageSettings,
}

impl Permission {
    /// Every permission, in table order.
    pub const ALL: [Permission; 12] = [
        Permission::ReadRecord,
        Permission::RegisterPatient,
        Permission::ManagePumps,
        Permission::Prescribe,
        Permission::Refill,
        Permission::ReviewGap,
        Permission::Interrogate,
        Permission::ManageAppointments,
        Permission::Worklist,
        Permission::Audit,
        Permission::ManageUsers,
        Permission::ManageSettings,
    ];
    /// The name in docs/ROLES.md.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadRecord => "read_record",
            Permission::RegisterPatient => "register_patient",
            Permission::ManagePumps => "manage_pumps",
            Permission::Prescribe => "prescribe",
            Permission::Refill => "refill",
            Permission::ReviewGap => "review_gap",
            Permission::Interrogate => "interrogate",
            Permission::ManageAppointments => "manage_appointments",
            Permission::Worklist => "worklist",
            Permission::Audit => "audit",
            Permission::ManageUsers => "manage_users",
            Permission::ManageSettings => "manage_settings",
        }
    }
    /// What it allows, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::ReadRecord => "read a patient's record (a patient: their own only)",
            Permission::RegisterPatient => "register a patient",
            Permission::ManagePumps => "record an implant, explant, paired keys and battery estimates",
            Permission::Prescribe => "authorise a prescription and program a therapy",
            Permission::Refill => "record or program a refill, as the nurse who does it",
            Permission::ReviewGap => "record the review of a refill gap",
            Permission::Interrogate => "interrogate a pump and record what it reported",
            Permission::ManageAppointments => "book and move appointments",
            Permission::Worklist => "see the refill worklist and the service's lists",
            Permission::Audit => "read and verify the audit log",
            Permission::ManageUsers => "add and list users",
            Permission::ManageSettings => "change the service's settings",
        }
    }
}

/// The role-permission table.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission as P;
    use Role as R;
    match permission {
        P::ReadRecord => role != R::Admin,
        P::RegisterPatient | P::ManagePumps | P::Interrogate | P::ReviewGap => {
            matches!(role, R::NurseSpecialist | R::Consultant | R::Neurosurgeon)
        }
        P::Prescribe | P::Refill => matches!(role, R::NurseSpecialist | R::Consultant),
        P::ManageAppointments => {
            matches!(role, R::NurseSpecialist | R::Consultant | R::Neurosurgeon | R::Physiotherapist)
        }
        P::Worklist => role.is_clinical(),
        P::Audit | P::ManageUsers | P::ManageSettings => role == R::Admin,
    }
}

/// The table as Markdown rows (docs/ROLES.md holds exactly this; a test compares them).
pub fn table_markdown() -> String {
    let mut out = String::from("| permission | what it allows |");
    for role in Role::ALL {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for permission in Permission::ALL {
        out.push_str(&format!("| {} | {} |", permission.as_str(), permission.describe()));
        for role in Role::ALL {
            out.push_str(if allows(role, permission) { " yes |" } else { " no |" });
        }
        out.push('\n');
    }
    out
}
