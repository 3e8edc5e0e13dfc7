"""Job leases: the replica running a job and until when, so several replicas can share the jobs table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 23:07:58.243691
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mirix.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("locked_until", mirix.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("locked_by")
