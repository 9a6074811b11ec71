"""Feature definitions of the credit-risk demo, applied by ``conveyor features apply``
(the demo applies them itself). Sources are the Parquet files the demo writes to data/.
"""

from datetime import timedelta

from conveyor.features import Entity, Feature, FeatureService, FeatureView, FileSource

customer = Entity("customer", join_keys=["customer_id"], description="A Lending Club borrower.")

loan_application = FeatureView(
    name="loan_application",
    entities=[customer],
    source=FileSource("data/applications.parquet"),
    timestamp_field="event_timestamp",
    features=[
        Feature("funded_amnt", "int64"),
        Feature("term", "string"),
        Feature("int_rate", "float64"),
        Feature("sub_grade", "string"),
        Feature("addr_state", "string"),
        Feature("verification_status", "string"),
        Feature("annual_inc", "float64"),
        Feature("emp_length", "string"),
    ],
    owner="credit-risk",
    description="What the borrower asked for and declared when applying; it does not expire.",
)

credit_history = FeatureView(
    name="credit_history",
    entities=[customer],
    source=FileSource("data/credit_history.parquet"),
    timestamp_field="pulled_at",
    ttl=timedelta(days=90),
    features=[
        Feature(name, "float64" if name == "revol_util" else "int64")
        for name in (
            "delinq_2yrs", "inq_last_6mths", "revol_util", "acc_now_delinq", "open_il_6m", "open_il_12m",
            "open_il_24m", "total_bal_il", "all_util", "inq_fi", "inq_last_12m", "delinq_amnt", "num_il_tl",
            "total_il_high_credit_limit",
        )
    ],
    owner="credit-risk",
    description="Credit bureau report, pulled up to 30 days before the application; valid for 90 days.",
)

credit_v1 = FeatureService(
    "credit_v1", features=[loan_application, credit_history], description="Inputs of the credit-risk model."
)
