"""FedAvg over scikit-learn LogisticRegression, as a Flower 1.42 app."""
